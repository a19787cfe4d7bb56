"""The rings an accept timeout widens an unanswered chat's offer by (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bridge.routing.steps.escalation import Directory
from bridge.routing.steps.schema import RouterStep
from bridge.routing.widening import Chat, describe, widen

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 21, 9, 59, tzinfo=UTC)
DIRECTORY = Directory(
    team_members={"support": frozenset({"ana", "ben"}), "vip": frozenset({"vic"})},
    organization_users={"acme": frozenset({"ana", "ben", "vic", "zoe"})},
)


# Offered to team support, the team of its channel, in organization acme.
BASE = Chat(
    offered_to=frozenset({"ana", "ben"}),
    passed_over=frozenset(),
    organization_id="acme",
    channel_team="support",
    team_id="support",
)


def chat(**fields: Any) -> Chat:
    return replace(BASE, **fields)


def step(index: int, *users: str, teams: tuple[str, ...] = ()) -> RouterStep:
    return RouterStep(index=index, user_ids=list(users), team_ids=list(teams))


def test_the_routers_next_step_comes_first_whatever_its_preconditions() -> None:
    """Step 1 takes effect now and adds vic; the progress records when."""
    steps = (step(0, "ana", "ben"), step(1, teams=("vip",)))
    widened = widen(chat(router_steps=steps, activated_at=(EARLIER,)), DIRECTORY, NOW)
    assert widened is not None
    assert widened.added == {"vic"}
    assert widened.offered_to == {"ana", "ben", "vic"}
    assert widened.activated_at == (EARLIER, NOW)
    assert widened.trace == "router step 1 in effect → also offered to vic"


def test_a_step_that_adds_nobody_new_is_passed_on_to_the_next_ring() -> None:
    """Step 1 names only ana (offered already): it takes effect, and the organization's
    others are offered."""
    steps = (step(0, "ana", "ben"), step(1, "ana"))
    widened = widen(chat(router_steps=steps, activated_at=(EARLIER,)), DIRECTORY, NOW)
    assert widened is not None
    assert widened.activated_at == (EARLIER, NOW)
    assert widened.added == {"vic", "zoe"}
    assert widened.trace == "organization 'acme' → also offered to vic, zoe"


def test_the_channels_team_when_the_chat_was_offered_more_narrowly() -> None:
    """Offered to ana alone (an assignee): the channel's team is the next ring."""
    widened = widen(chat(offered_to=frozenset({"ana"}), team_id=None), DIRECTORY, NOW)
    assert widened is not None
    assert (widened.added, widened.trace) == ({"ben"}, "team 'support' → also offered to ben")


def test_agents_passed_over_are_not_offered_again_and_nothing_left_is_none() -> None:
    """Zoe let it lapse before; vic is the only one left, and after him nobody."""
    passed = frozenset({"zoe"})
    widened = widen(chat(passed_over=passed), DIRECTORY, NOW)
    assert widened is not None and widened.added == {"vic"}
    assert widen(chat(offered_to=widened.offered_to, passed_over=passed), DIRECTORY, NOW) is None


def test_a_long_list_of_people_is_cut_short_in_the_trace() -> None:
    names = [f"agent-{i:02d}" for i in range(12)]
    assert describe(names) == ", ".join(names[:10]) + " and 2 more"
