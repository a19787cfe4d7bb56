"""Tovie DialogStudio on the bot side: the bridge serves Tovie's Operator API."""

from adapters.tovie.adapter import TovieBot
from adapters.tovie.options import TovieOptions, ToviePaths

__all__ = ["TovieBot", "TovieOptions", "ToviePaths"]
