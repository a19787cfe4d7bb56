"""giosg LIVE as an agent-side platform: the bridge opens chats as an external visitor."""

from adapters.giosg.adapter import GiosgAdapter
from adapters.giosg.options import GiosgOptions
from adapters.giosg.wire import GiosgAction, GiosgAttachment

__all__ = ["GiosgAction", "GiosgAdapter", "GiosgAttachment", "GiosgOptions"]
