"""Why a handoff waits or failed: the machine-readable `reason` of `handoff.waiting` and
`handoff.failed`, the same names in every bot-side translation.

A bot branches on these (offer a callback outside hours, a form when nobody is online),
and the human text that goes with them is `detail`, which may change between versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

Reason = Literal["no_agents_online", "outside_hours", "platform_error", "capacity"]

# Nobody who could take the chat is online (or the platform says nobody is available).
NO_AGENTS_ONLINE: Final = "no_agents_online"
# Outside the channel's (or its team's) business hours, with nowhere to fall back to.
OUTSIDE_HOURS: Final = "outside_hours"
# The agent side could not be reached or refused the chat.
PLATFORM_ERROR: Final = "platform_error"
# Agents are online, but every one of them is at capacity.
CAPACITY: Final = "capacity"

REASONS: Final[tuple[Reason, ...]] = (NO_AGENTS_ONLINE, OUTSIDE_HOURS, PLATFORM_ERROR, CAPACITY)

# What the bot is told beside the reason, in `detail` (the words may change).
DETAILS: Final[Mapping[Reason, str]] = {
    NO_AGENTS_ONLINE: "no agent is online",
    OUTSIDE_HOURS: "outside business hours",
    PLATFORM_ERROR: "the agent side could not be reached",
    CAPACITY: "every online agent is at capacity",
}

# What a waiting customer may do: keep waiting, or go back to the bot (release, cancel).
WAITING_OPTIONS: Final = ("wait", "release")


def waiting(reason: Reason) -> dict[str, Any]:
    """The data of `handoff.waiting`: why, in words, and what the bot may do."""
    return {"reason": reason, "detail": DETAILS[reason], "options": list(WAITING_OPTIONS)}


def failed(reason: Reason, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    """The data of `handoff.failed`: why, and the words for it (the status reason, say)."""
    return {"reason": reason, "detail": detail or DETAILS[reason], **extra}
