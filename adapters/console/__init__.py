"""The built-in agent console: the embedded live-chat platform, an adapter like any other."""

from adapters.console.adapter import ConsoleAdapter
from adapters.console.hub import ConsoleHub
from adapters.console.links import DeskLinks, JoinLinks

__all__ = ["ConsoleAdapter", "ConsoleHub", "DeskLinks", "JoinLinks"]
