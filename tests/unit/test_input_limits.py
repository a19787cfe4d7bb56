"""The input limits: JSON depth without recursion, unstorable text, ids, and column lengths."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from bridge.api.agents import AgentBody, TeamBody
from bridge.db.lengths import column_length
from bridge.db.tables import AgentRow, Base, ConversationRow, MessageRow, TeamRow
from bridge.errors import MalformedJSON, MalformedPayload
from bridge.input_limits import MAX_JSON_DEPTH, json_depth, load_json, stored_id
from bridge.models import (
    AssignRequest,
    BotRef,
    Customer,
    CustomerMessageRequest,
    HandoffRequest,
    HistoryMessage,
    PresenceUpdate,
)
from bridge.ports.agent_side import InboundEvent
from bridge.services.inbound.limits import storable_events


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": {"b": [1, [2]]}}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets in a string nest nothing
        (b'["\\"[[[", "\\\\", [[]]]', 3),  # nor after an escaped quote or backslash
        (b'["\xc3\xa9[", {"\xe2\x82\xac": []}]', 3),  # multi-byte characters are skipped
        (b"[" * 5000 + b"]" * 5000, 5000),
    ],
)
def test_json_depth(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def _nested(depth: int) -> bytes:
    return b'{"a": ' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_the_depth_limit_is_inclusive() -> None:
    assert load_json(_nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(MalformedJSON) as refused:
        load_json(_nested(MAX_JSON_DEPTH + 1))
    assert refused.value.fields[0].field == "(body)"
    # A thousand levels: refused before json.loads could recurse into a RecursionError.
    with pytest.raises(MalformedJSON):
        load_json(b"[" * 100_000)


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        (b'{"a": {"b": ["x", "y\\u0000"]}}', "a.b[1]", "NUL"),
        (b'{"a": "\\ud800"}', "a", "surrogate"),
        (b'{"a": "\\udfff\\ud800"}', "a", "surrogate"),  # reversed: still not a pair
        (b'[{"k\\u0000": 1}]', "[0]", "a key contains a NUL"),
        (b'"\\u0000"', "(body)", "NUL"),
        (b'{"n": NaN}', "(body)", "not valid JSON"),
        (b'{"n": -Infinity}', "(body)", "not valid JSON"),
        (b'{"n": 1e400}', "(body)", "not valid JSON"),
        (b'{"a": "\xff"}', "(body)", "not UTF-8 text"),
    ],
)
def test_unstorable_values_name_their_field(raw: bytes, field: str, problem: str) -> None:
    with pytest.raises(MalformedPayload) as refused:
        load_json(raw, MalformedPayload)
    assert refused.value.fields[0].field == field
    assert problem in refused.value.fields[0].problem


def test_good_text_is_kept() -> None:
    raw = '\ufeff{"a": "😀 \\ud83d\\ude00 ü", "n": 1.5e10}'.encode()
    assert load_json(raw) == {"a": "😀 😀 ü", "n": 1.5e10}


@pytest.mark.parametrize(
    ("text", "value"),
    [("42", 42), ("0", 0), ("²", None), ("١٢", None), ("-1", None), ("9" * 19, None), ("", None)],
)
def test_stored_id(text: str, value: int | None) -> None:
    assert stored_id(text) == value


# Every request field that is written to a String(n) column, and that column.
STORED_FIELDS: list[tuple[type[BaseModel], str, type[Base], str]] = [
    (BotRef, "platform", ConversationRow, "bot_platform"),
    (BotRef, "conversation_id", ConversationRow, "bot_conversation_id"),
    (Customer, "id", ConversationRow, "customer_id"),
    (HandoffRequest, "channel", ConversationRow, "main_channel"),
    (HandoffRequest, "region", ConversationRow, "region"),
    (HistoryMessage, "author", MessageRow, "author"),
    (CustomerMessageRequest, "id", MessageRow, "external_id"),
    (AssignRequest, "agent_id", ConversationRow, "assignee_id"),
    (PresenceUpdate, "agent_id", AgentRow, "id"),
    (PresenceUpdate, "name", AgentRow, "name"),
    (AgentBody, "name", AgentRow, "name"),
    (AgentBody, "email", AgentRow, "email"),
    (AgentBody, "organization_id", AgentRow, "organization_id"),
    (TeamBody, "name", TeamRow, "name"),
    (TeamBody, "hours", TeamRow, "hours"),
]


def _max_length(model: type[BaseModel], name: str) -> int | None:
    for item in model.model_fields[name].metadata:
        length = getattr(item, "max_length", None)
        if length is not None:
            return int(length)
    return None


@pytest.mark.parametrize(("model", "name", "table", "column"), STORED_FIELDS)
def test_request_fields_fit_their_columns(
    model: type[BaseModel], name: str, table: type[Base], column: str
) -> None:
    limit = _max_length(model, name)
    assert limit is not None, f"{model.__name__}.{name} has no max_length"
    assert limit <= column_length(table, column)


def test_team_ids_are_held_to_their_column_and_kept_once() -> None:
    assert AgentBody(name="A", teams=["t1", "t2", "t1"]).teams == ["t1", "t2"]
    with pytest.raises(ValueError, match="at most 128"):
        AgentBody(name="A", teams=["t" * 129])


def _event(**fields: Any) -> InboundEvent:
    return InboundEvent(**{"kind": "agent.message", "event_id": "m-1", "text": "hi", **fields})


def test_events_the_store_cannot_keep_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    good = _event()
    long_key = _event(event_id="k" * 257)
    nul_ref = _event(event_id="m-2", external_ref="chat\x00")
    long_agent = _event(event_id="m-3", kind="agent.presence", agent_id="a" * 129, text=None)
    with caplog.at_level(logging.WARNING):
        kept = storable_events("km", [long_key, good, nul_ref, long_agent])
    assert kept == [good]
    refusals = [r for r in caplog.records if r.getMessage() == "inbound.refused"]
    assert [getattr(r, "why", "") for r in refusals] == [
        "event_id is 257 characters long; at most 256 can be kept",
        "external_ref contains a NUL character",
        "agent_id is 129 characters long; at most 128 can be kept",
    ]
    assert "k" * 257 not in caplog.text  # values are never logged


def test_an_agent_reply_longer_than_kept_is_shortened() -> None:
    (kept,) = storable_events("km", [_event(text="x" * 20_000)])
    assert kept.text is not None
    assert len(kept.text) == 10_000
    assert kept.text.endswith("x…")
