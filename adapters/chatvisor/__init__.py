"""Chatvisor (TeamViewer Engage) as the agent side: see adapter.py for what it assumes."""

from adapters.chatvisor.adapter import ChatvisorAdapter
from adapters.chatvisor.options import ChatvisorOptions

__all__ = ["ChatvisorAdapter", "ChatvisorOptions"]
