"""The console's agent-side adapter.

The console's agents read conversations straight from the bridge's own store, so
"delivering" to it means waking the pages that watch the conversation. It still goes
through the outbox like every platform, which keeps one delivery path to test.
"""

from __future__ import annotations

from typing import ClassVar

from bridge.ports.agent_side import (
    AgentSideAdapter,
    Capabilities,
    ConversationRef,
    ConversationSnapshot,
    OpenResult,
    OutboundMessage,
)


class ConsoleAdapter(AgentSideAdapter):
    """The built-in agent console."""

    platform: ClassVar[str] = "console"
    # History lives in the same store the console reads; the join link is the bridge's.
    capabilities: ClassVar[Capabilities] = Capabilities(history=True, join_url=False)

    async def open_conversation(self, conversation: ConversationSnapshot) -> OpenResult:
        self.context.live.wake(conversation.id)
        return OpenResult(external_ref=conversation.id)

    async def post_message(self, conversation: ConversationRef, message: OutboundMessage) -> None:
        self.context.live.wake(conversation.id)

    async def close_conversation(self, conversation: ConversationRef, reason: str) -> None:
        self.context.live.wake(conversation.id)
