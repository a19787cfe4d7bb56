"""Kommunicate, the agent side: see `adapter` for what it does and what it assumes."""

from adapters.kommunicate.adapter import KommunicateAdapter
from adapters.kommunicate.options import ConversationSettings, KommunicateOptions

__all__ = ["ConversationSettings", "KommunicateAdapter", "KommunicateOptions"]
