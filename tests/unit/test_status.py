"""The lifecycle table: every (status, event) pair, and statuses spelled only in the domain."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.domain.conversation import (
    join_changes_nothing,
    opening_status,
    reply_joins_first,
    waiting_for_agent,
)
from bridge.domain.status import (
    ACTIVE,
    TRANSITIONS,
    Event,
    Status,
    allows,
    sources,
    target,
    transition,
)
from bridge.errors import InvalidTransition

P, A, C, R, F = Status.PENDING, Status.ACTIVE, Status.CLOSED, Status.RELEASED, Status.FAILED

# Written out by hand, apart from the table, so that a change to the table shows here.
ALLOWED: dict[tuple[Status, Event], Status] = {
    (P, Event.JOIN): A,
    (P, Event.TAKE): A,
    (P, Event.CLOSE): C,
    (A, Event.CLOSE): C,
    (P, Event.RELEASE): R,
    (A, Event.RELEASE): R,
    (P, Event.CANCEL): R,
    (P, Event.FAIL): F,
    (A, Event.FAIL): F,
    (A, Event.REQUEUE): P,
    (P, Event.TRANSFER): P,
    (A, Event.TRANSFER): P,
    (P, Event.CUSTOMER_MESSAGE): P,
    (A, Event.CUSTOMER_MESSAGE): A,
    (A, Event.AGENT_MESSAGE): A,
    (P, Event.UPDATE_METADATA): P,
    (A, Event.UPDATE_METADATA): A,
}
REFUSED = [(now, event) for now in Status for event in Event if (now, event) not in ALLOWED]


def test_the_store_and_the_api_keep_todays_values() -> None:
    """The status column and the API's `status` field hold these strings."""
    assert [s.value for s in Status] == ["pending", "active", "closed", "released", "failed"]
    assert ACTIVE == {"pending", "active"}


def test_the_table_is_exactly_the_allowed_pairs() -> None:
    """Nothing allowed beyond the pairs listed here, nothing listed missing."""
    assert dict(TRANSITIONS) == ALLOWED


@pytest.mark.parametrize(("now", "event"), sorted(ALLOWED, key=str))
def test_an_allowed_event_leads_to_its_status(now: Status, event: Event) -> None:
    """Each allowed pair moves the conversation where the lifecycle says."""
    assert allows(now, event)
    assert transition("c1", now, event) == ALLOWED[now, event]


@pytest.mark.parametrize(("now", "event"), sorted(REFUSED, key=str))
def test_a_refused_event_is_a_conflict_naming_the_status(now: Status, event: Event) -> None:
    """What a client sees for a refused pair: a 409 that names the status and the action."""
    assert not allows(now, event)
    with pytest.raises(InvalidTransition) as refused:
        transition("c1", now, event)
    assert refused.value.status == 409
    assert refused.value.message == f"cannot {event.value} conversation 'c1': it is {now.value}"
    assert [(f.field, f.problem) for f in refused.value.fields] == [
        ("status", f"is {now.value}; {event.value} is not allowed")
    ]


def test_ended_conversations_allow_nothing() -> None:
    """Closed, released and failed are final: no event leaves them, none is allowed."""
    for now in (C, R, F):
        assert not [event for event in Event if allows(now, event)]


def test_the_conditional_update_of_each_status_change() -> None:
    """The store's conditional UPDATE: from which statuses, to which one."""
    assert (sources(Event.JOIN), target(Event.JOIN)) == ({P}, A)
    assert (sources(Event.TAKE), target(Event.TAKE)) == ({P}, A)
    assert (sources(Event.CLOSE), target(Event.CLOSE)) == (ACTIVE, C)
    assert (sources(Event.RELEASE), target(Event.RELEASE)) == (ACTIVE, R)
    assert (sources(Event.FAIL), target(Event.FAIL)) == (ACTIVE, F)
    assert (sources(Event.CANCEL), target(Event.CANCEL)) == ({P}, R)
    with pytest.raises(ValueError, match="CUSTOMER_MESSAGE"):
        target(Event.CUSTOMER_MESSAGE)


def test_the_decisions_about_one_conversation() -> None:
    """Opening outside hours fails; a repeated join changes nothing; a reply may be the join."""
    assert opening_status(outside_hours=False) == P
    assert opening_status(outside_hours=True) == F
    assert [s for s in Status if join_changes_nothing(s)] == [A]
    assert [s for s in Status if reply_joins_first(s)] == [P]
    assert waiting_for_agent(P, None)
    assert not waiting_for_agent(P, "agent-1")
    assert not [s for s in Status if s != P and waiting_for_agent(s, None)]


# -- statuses are spelled only in bridge/domain/ ---------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
_SPELLINGS = {s.value for s in Status}
# Deliveries (OutboxRow) have a status vocabulary of their own: pending, delivered, dead,
# cancelled. Their "pending" is no conversation's.
_OUTBOX_ROW = "OutboxRow"


def _outbox_aliases(tree: ast.AST) -> set[str]:
    """Names bound to `aliased(OutboxRow)`, which stand for outbox rows in a query."""
    names = {_OUTBOX_ROW}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "aliased"
            and any(isinstance(a, ast.Name) and a.id == _OUTBOX_ROW for a in node.value.args)
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _spelled(node: ast.AST) -> list[str]:
    """Status strings written as literals in `node` (a constant or a literal collection)."""
    if isinstance(node, ast.Constant) and node.value in _SPELLINGS:
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for item in node.elts for s in _spelled(item)]
    return []


def _is_outbox_status(node: ast.AST, outbox_names: set[str]) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "status"
        and isinstance(node.value, ast.Name)
        and node.value.id in outbox_names
    )


def status_literals(source: str, name: str) -> list[str]:
    """`name:line statuses` for each comparison of a status with a string literal, in order."""
    tree = ast.parse(source, name)
    outbox_names = _outbox_aliases(tree)
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if not any(_is_outbox_status(o, outbox_names) for o in operands):
                found = [s for o in operands for s in _spelled(o)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "in_"
            and not _is_outbox_status(node.func.value, outbox_names)
        ):
            found = [s for a in node.args for s in _spelled(a)]
        elif isinstance(node, ast.MatchValue):
            found = _spelled(node.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            # A set of statuses of its own, such as another ("pending", "active").
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.args:
                value = value.args[0]  # frozenset({...}), tuple([...])
            if isinstance(value, ast.Tuple | ast.List | ast.Set) and value.elts:
                spelled = _spelled(value)
                found = spelled if len(spelled) == len(value.elts) else []
        if found:
            line = getattr(node, "lineno", 0)
            hits.append((line, f"{name}:{line} {', '.join(found)}"))
    return [hit for _, hit in sorted(hits)]


def _project_sources() -> Iterator[tuple[str, str]]:
    for package in ("bridge", "adapters"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(("bridge/domain/", "bridge/db/migrations/")):
                continue
            yield relative, path.read_text(encoding="utf-8")


def test_the_finder_sees_each_way_of_spelling_a_status() -> None:
    """The check below catches ==, !=, in, a SQL in_(), a match case and a set of statuses."""
    source = (
        'if row.status == "pending": pass\n'
        'if "closed" != row.status: pass\n'
        'ok = row.status in ("pending", "active")\n'
        'query = ConversationRow.status.in_(["active"])\n'
        "match row.status:\n"
        '    case "failed": pass\n'
        'done = row.status is Status.CLOSED or kind == "conversation.closed"\n'
        'due = OutboxRow.status == "pending"\n'
        "earlier = aliased(OutboxRow)\n"
        'head = earlier.status == "pending"\n'
        '_OPEN = ("pending", "active")\n'
        'ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "active"})\n'
        '_KINDS = {"pending", "delivered", "dead", "cancelled"}\n'
    )
    assert status_literals(source, "sample.py") == [
        "sample.py:1 pending",
        "sample.py:2 closed",
        "sample.py:3 pending, active",
        "sample.py:4 active",
        "sample.py:6 failed",
        "sample.py:11 pending, active",
        "sample.py:12 pending, active",
    ]


def test_no_status_is_spelled_outside_the_domain() -> None:
    """Every path compares statuses through bridge.domain (Status, ACTIVE), never a string."""
    found = [hit for name, source in _project_sources() for hit in status_literals(source, name)]
    assert found == []
