"""The explicit registry of agent-side platforms, and building one adapter per channel."""

from __future__ import annotations

from adapters.base import AdapterContext, AgentSideAdapter
from adapters.console.adapter import ConsoleAdapter
from bridge.errors import ConfigError
from bridge.settings import Settings

AGENT_SIDE: dict[str, type[AgentSideAdapter]] = {cls.platform: cls for cls in (ConsoleAdapter,)}


def build_agent_adapters(
    settings: Settings, context: AdapterContext
) -> dict[str, AgentSideAdapter]:
    """One adapter per channel, each validating its own options; fails fast on a bad one."""
    adapters: dict[str, AgentSideAdapter] = {}
    for name, channel in settings.channels.items():
        cls = AGENT_SIDE.get(channel.platform)
        if cls is None:
            known = ", ".join(sorted(AGENT_SIDE))
            raise ConfigError(
                f"channels.{name}.platform: unknown platform {channel.platform!r} (known: {known})"
            )
        adapters[name] = cls.from_settings(name, channel.options, context)
    return adapters
