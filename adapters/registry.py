"""The explicit registry of agent-side platforms, and building one adapter per channel."""

from __future__ import annotations

from adapters.chatvisor import ChatvisorAdapter
from adapters.console.adapter import ConsoleAdapter
from adapters.giosg import GiosgAdapter
from adapters.jivochat import JivoBotProvider, JivoChatAdapter
from adapters.kommunicate import KommunicateAdapter
from adapters.reference import ReferenceAdapter, ReferenceBot
from adapters.tovie import TovieBot
from adapters.vivochat import VivoChatAdapter
from adapters.webhook import StandardWebhooksBot
from bridge.errors import ConfigError
from bridge.ports.agent_side import AgentSideAdapter
from bridge.ports.bot_side import DEFAULT_BOT, BotSideAdapter
from bridge.ports.context import AdapterContext
from bridge.settings import Settings

# One line per platform; the key is the `platform` a channel (or bot) names in config.
AGENT_SIDE: dict[str, type[AgentSideAdapter]] = {
    cls.platform: cls
    for cls in (
        ConsoleAdapter,
        VivoChatAdapter,
        ChatvisorAdapter,
        KommunicateAdapter,
        JivoChatAdapter,
        GiosgAdapter,
        # The annotated example of docs/adapters.md (Reference Desk is made up).
        ReferenceAdapter,
    )
}
BOT_SIDE: dict[str, type[BotSideAdapter]] = {
    cls.platform: cls for cls in (StandardWebhooksBot, TovieBot, JivoBotProvider, ReferenceBot)
}


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


def build_bot_adapters(settings: Settings, context: AdapterContext) -> dict[str, BotSideAdapter]:
    """One adapter per configured bot, plus the default webhook bot under its own name."""
    adapters: dict[str, BotSideAdapter] = {
        DEFAULT_BOT: StandardWebhooksBot.from_settings(DEFAULT_BOT, {}, context)
    }
    for name, bot in settings.bots.items():
        cls = BOT_SIDE.get(bot.platform)
        if cls is None:
            known = ", ".join(sorted(BOT_SIDE))
            raise ConfigError(
                f"bots.{name}.platform: unknown bot platform {bot.platform!r} (known: {known})"
            )
        adapters[name] = cls.from_settings(name, bot.options, context)
    return adapters
