"""Handoff bridge: hands a chat from a bot to human agents, routes it, and relays it durably."""

__version__ = "0.1.0"
