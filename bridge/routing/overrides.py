"""Conversation settings overrides, as Kommunicate's `updateSettings` describes them.

A handoff (or a channel's config) may carry settings that override routing for new
conversations: default agents and bots added to every conversation, a default assignee
(only with `skip_routing`), a team whose rules apply, bot events to skip, and a welcome
message. Both our snake_case names and Kommunicate's own spellings are accepted.

Precedence, from the seed: the conversation's settings override the channel's configured
ones key by key; an empty settings object, or an empty value (null, "" or []), inherits
the channel's. Kommunicate restores the dashboard's rules by passing empty values, so an
empty value never clears a channel default. A conversation's agent or bot list *replaces*
the channel's list rather than extending it: the seed calls these parameters overrides of
the dashboard's rules, whose defaults they take the place of.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict

from bridge.errors import FieldProblem, InvalidInput
from bridge.models import MAX_TEXT

MAX_ID = 256
MAX_ITEMS = 100

_TRUE_FALSE = MappingProxyType({"true": True, "false": False})


class ConversationSettings(BaseModel):
    """The settings in force for one new conversation, after channel defaults are merged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_agent_ids: tuple[str, ...] = ()
    default_bot_ids: tuple[str, ...] = ()
    default_assignee: str | None = None
    skip_routing: bool = False
    skip_bot_events: tuple[str, ...] = ()
    team_id: str | None = None
    welcome_message: str | None = None

    def effective_assignee(self) -> str | None:
        """The default assignee, which only overrides routing together with skip_routing."""
        # Kommunicate: "pass skipRouting: true with defaultAssignee"; alone, routing decides.
        return self.default_assignee if self.skip_routing else None


class _Problem(ValueError):
    """A value of the wrong type or shape; the message says what was expected."""


class _Empty:
    """Marks an empty value, which inherits the channel's setting instead of clearing it."""


_EMPTY = _Empty()
_NO_SETTINGS = ConversationSettings()


def _id(value: Any) -> str | _Empty:
    # Kommunicate's teamId is a number in one example and text in another; like the
    # customer id, the bridge keeps every id as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _Problem("must be an id (text or a whole number)")
    text = value.strip()
    if len(text) > MAX_ID:
        raise _Problem(f"must be at most {MAX_ID} characters")
    return text or _EMPTY


def _names(value: Any, what: str) -> tuple[str, ...] | _Empty:
    if not isinstance(value, list | tuple):
        raise _Problem(f"must be a list of {what}")
    if len(value) > MAX_ITEMS:
        raise _Problem(f"must hold at most {MAX_ITEMS} {what}")
    names: dict[str, None] = {}  # ordered and without repeats: adding one twice means once
    for position, item in enumerate(value):
        try:
            name = _id(item)
        except _Problem as exc:
            raise _Problem(f"item {position}: {exc}") from None
        if isinstance(name, _Empty):
            raise _Problem(f"item {position} is empty")
        names[name] = None
    return tuple(names) or _EMPTY


def _id_list(value: Any) -> tuple[str, ...] | _Empty:
    return _names(value, "ids")


def _events(value: Any) -> tuple[str, ...] | _Empty:
    # Kommunicate passes skipBotEvent as JSON text: '["WELCOME_EVENT"]'.
    if isinstance(value, str):
        if not value.strip():
            return _EMPTY
        try:
            value = json.loads(value)
        except ValueError:
            value = None
        if not isinstance(value, list):
            raise _Problem("must be a list of event names, or one as JSON text: '[\"EVENT\"]'")
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise _Problem(f"item {position} must be an event name (text)")
    return _names(value, "event names")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # The seed's startConversation example passes "skipRouting": "true" as text.
    if isinstance(value, str) and value.strip().lower() in _TRUE_FALSE:
        return _TRUE_FALSE[value.strip().lower()]
    raise _Problem("must be true or false")


def _text(value: Any) -> str | _Empty:
    if not isinstance(value, str):
        raise _Problem("must be text")
    if len(value) > MAX_TEXT:
        raise _Problem(f"must be at most {MAX_TEXT} characters")
    return value if value.strip() else _EMPTY


_PARSERS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "default_agent_ids": _id_list,
        "default_bot_ids": _id_list,
        "default_assignee": _id,
        "skip_routing": _flag,
        "skip_bot_events": _events,
        "team_id": _id,
        "welcome_message": _text,
    }
)

# Every accepted spelling -> our name. Kommunicate's are from its conversation settings.
_SPELLINGS: Mapping[str, str] = MappingProxyType(
    {name: name for name in _PARSERS}
    | {
        "defaultAgentIds": "default_agent_ids",
        "defaultBotIds": "default_bot_ids",
        "defaultAssignee": "default_assignee",
        "skipRouting": "skip_routing",
        "skipBotEvent": "skip_bot_events",
        "teamId": "team_id",
        "WELCOME_MESSAGE": "welcome_message",
    }
)
_BY_LOWER: Mapping[str, str] = MappingProxyType({key.lower(): key for key in _SPELLINGS})


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key.lower(), _BY_LOWER, n=1, cutoff=0.75)
    if close:
        return f"unknown setting; did you mean {_BY_LOWER[close[0]]!r}?"
    return "unknown setting; known: " + ", ".join(_PARSERS)


def parse_settings(raw: Mapping[str, Any], *, where: str = "settings") -> dict[str, Any]:
    """Validate settings in either spelling; return the given, non-empty ones in snake_case."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object", [FieldProblem(where, "must be an object")])
    if not raw:
        return {}  # the usual case: nothing given, nothing to check
    parsed: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    problems: list[FieldProblem] = []
    for key, value in raw.items():
        field = f"{where}.{key}"
        name = _SPELLINGS.get(key) if isinstance(key, str) else None
        if name is None:
            problems.append(FieldProblem(field, _unknown(str(key))))
            continue
        if name in given_as:
            problems.append(
                FieldProblem(field, f"repeats {where}.{given_as[name]}; give each setting once")
            )
            continue
        given_as[name] = key
        if value is None:
            continue
        try:
            normal = _PARSERS[name](value)
        except _Problem as exc:
            problems.append(FieldProblem(field, str(exc)))
            continue
        if normal is not _EMPTY:
            # Lists, not tuples: the result is stored as JSON and must read back the same.
            parsed[name] = list(normal) if isinstance(normal, tuple) else normal
    if problems:
        raise InvalidInput(f"{where} has invalid fields", problems)
    return parsed


def merge_settings(
    channel_defaults: Mapping[str, Any], conversation: Mapping[str, Any]
) -> ConversationSettings:
    """Settings for a new conversation: each key it gives overrides the channel's default."""
    # Both are parse_settings outputs: empty values are already gone, so an empty
    # conversation object inherits every channel default.
    if not channel_defaults and not conversation:
        return _NO_SETTINGS  # the usual case; the model is frozen, so it can be shared
    return ConversationSettings.model_validate({**channel_defaults, **conversation})
