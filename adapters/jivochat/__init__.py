"""JivoChat, both ways: the Bot API provider (bot side) and Jivo's agents (agent side).

- `JivoBotProvider` (bots: platform `jivochat`): Jivo as the business channel. Every
  dialog passes through Jivo; the bridge is its bot provider and relays to the real bot
  (Standard Webhooks) through the outbox. See `adapters.jivochat.bot`.
- `JivoChatAdapter` (channels: platform `jivochat`): Jivo's agents, either by the Bot
  API's INVITE_AGENT for a chat already in Jivo (`mode: bot_api`, a JivoBotApiAdapter)
  or through Jivo's Chat API for custom channels (`mode: chat_api`, a
  JivoChatApiAdapter). See `adapters.jivochat.agent`.
"""

from adapters.jivochat.agent import JivoBotApiAdapter, JivoChatAdapter, JivoChatApiAdapter
from adapters.jivochat.bot import JivoBotProvider

__all__ = ["JivoBotApiAdapter", "JivoBotProvider", "JivoChatAdapter", "JivoChatApiAdapter"]
