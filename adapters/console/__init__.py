"""The built-in agent console: the embedded live-chat platform, an adapter like any other."""

from adapters.console.adapter import ConsoleAdapter

__all__ = ["ConsoleAdapter"]
