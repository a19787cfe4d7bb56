"""Router steps escalate exactly as giosg's Routers API describes (seed 004)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bridge.errors import FieldProblem, InvalidInput
from bridge.routing.steps import (
    Directory,
    Evaluation,
    Precondition,
    Presence,
    Progress,
    RouterStep,
    advance,
    parse_steps,
    scope_problems,
    step_users,
    stored_step,
    validate_steps,
)

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
TEAMS = {
    "primary": frozenset({"ann", "bob"}),
    "secondary": frozenset({"cat", "dan"}),
    "night": frozenset({"eve"}),
}


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def step(index: int, *conditions: tuple[str, float], **who: list[str]) -> RouterStep:
    return RouterStep.model_validate(
        {
            "index": index,
            "preconditions": [{"type": kind, "value": value} for kind, value in conditions],
            **who,
        }
    )


def directory(**presence: Presence) -> Directory:
    return Directory(team_members=TEAMS, organization_users={}, presence=presence)


PRIMARY_THEN_SECONDARY = [
    step(0, team_ids=["primary"]),
    step(1, ("users_offline", 100), team_ids=["secondary"]),
]


# -- the seed's scenarios ----------------------------------------------------------------------


def test_new_chat_goes_to_the_first_step_at_once() -> None:
    result = advance(PRIMARY_THEN_SECONDARY, None, directory(ann="online"), T0, T0)
    assert result.progress == Progress((T0,))
    assert result.newly_activated == (0,)
    assert result.offered_to == {"ann", "bob"}
    assert result.trace[0] == "step 0 in effect at once → users ann, bob"


def test_primary_team_all_offline_hands_the_chat_to_the_secondary_team() -> None:
    people = directory(ann="offline", bob="absent", cat="online")
    result = advance(PRIMARY_THEN_SECONDARY, None, people, T0, T0)
    assert result.newly_activated == (0, 1)
    assert result.offered_to == {"ann", "bob", "cat", "dan"}
    assert result.trace[1] == (
        "step 1 in effect: 100% of previous users offline (2 of 2; ≥ 100%) → users cat, dan"
    )
    assert result.next_due is None  # nothing left to escalate to


def test_secondary_team_waits_while_anyone_in_the_primary_team_is_online() -> None:
    result = advance(PRIMARY_THEN_SECONDARY, None, directory(ann="online"), T0, T0)
    assert result.offered_to == {"ann", "bob"}
    assert result.next_due is None  # only a presence change can move this chat on
    assert result.trace[-1] == "step 1 waits: 50% of previous users offline (1 of 2; < 100%)"


def test_primary_team_going_offline_later_escalates_on_that_presence_change() -> None:
    first = advance(PRIMARY_THEN_SECONDARY, None, directory(ann="online"), T0, T0)
    later = advance(
        PRIMARY_THEN_SECONDARY, first.progress, directory(ann="offline"), T0, seconds(42)
    )
    assert later.newly_activated == (1,)
    assert later.progress == Progress((T0, seconds(42)))


def test_nobody_takes_it_for_10_seconds_so_the_next_step_takes_effect() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("task_waited_in_previous_step", 10), team_ids=["secondary"]),
    ]
    people = directory(ann="online", bob="online")
    first = advance(steps, None, people, T0, T0)
    assert first.next_due == seconds(10)

    early = advance(steps, first.progress, people, T0, seconds(9.5))
    assert early.newly_activated == ()
    assert early.next_due == seconds(10)

    due = advance(steps, early.progress, people, T0, seconds(10))
    assert due.newly_activated == (1,)
    assert due.offered_to == {"ann", "bob", "cat", "dan"}
    assert due.trace[0] == (
        "step 1 in effect after 10 s waited in the previous step → users cat, dan"
    )


def test_users_offline_counts_logged_in_but_not_started_while_users_absent_does_not() -> None:
    offline_rule = [step(0, team_ids=["primary"]), step(1, ("users_offline", 100), user_ids=["x"])]
    absent_rule = [step(0, team_ids=["primary"]), step(1, ("users_absent", 100), user_ids=["x"])]
    logged_in_not_started = directory(ann="offline", bob="offline")
    assert advance(offline_rule, None, logged_in_not_started, T0, T0).newly_activated == (0, 1)
    assert advance(absent_rule, None, logged_in_not_started, T0, T0).newly_activated == (0,)

    not_logged_in = directory(ann="absent")  # bob has no known presence: absent too
    result = advance(absent_rule, None, not_logged_in, T0, T0)
    assert result.newly_activated == (0, 1)
    assert "100% of previous users absent (2 of 2; ≥ 100%)" in result.trace[1]


def test_a_percentage_below_100_escalates_on_part_of_the_team() -> None:
    steps = [
        step(0, user_ids=["a", "b", "c"]),
        step(1, ("users_offline", 66.67), team_ids=["night"]),
    ]
    two_of_three = Directory(presence={"a": "online", "b": "offline", "c": "absent"})
    one_of_three = Directory(presence={"a": "online", "b": "online", "c": "absent"})
    assert advance(steps, None, one_of_three, T0, T0).newly_activated == (0,)
    # 2 of 3 is 66.666…%: below 66.67, so no escalation, however the float rounds.
    assert advance(steps, None, two_of_three, T0, T0).newly_activated == (0,)
    steps[1] = step(1, ("users_offline", 66), team_ids=["night"])
    assert advance(steps, None, two_of_three, T0, T0).newly_activated == (0, 1)


def test_task_waited_counts_from_creation_not_from_the_previous_step() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("users_offline", 100), team_ids=["secondary"]),
        step(2, ("task_waited", 30), team_ids=["night"]),
    ]
    first = advance(steps, None, directory(ann="online"), T0, T0)
    assert first.next_due is None  # step 2 waits for step 1, which waits for presence
    second = advance(steps, first.progress, directory(), T0, seconds(25))
    assert second.newly_activated == (1,)
    assert second.next_due == seconds(30)  # still 30 s after creation, not 25 + 30
    third = advance(steps, second.progress, directory(), T0, seconds(30))
    assert third.newly_activated == (2,)
    assert third.trace[0] == "step 2 in effect after 30 s waited → users eve"


def test_task_waited_in_previous_step_restarts_the_clock_at_each_step() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("users_offline", 100), team_ids=["secondary"]),
        step(2, ("task_waited_in_previous_step", 30), team_ids=["night"]),
    ]
    first = advance(steps, None, directory(ann="online"), T0, T0)
    second = advance(steps, first.progress, directory(), T0, seconds(25))
    assert second.newly_activated == (1,)
    assert second.next_due == seconds(55)
    assert advance(steps, second.progress, directory(), T0, seconds(54)).newly_activated == ()
    assert advance(steps, second.progress, directory(), T0, seconds(55)).newly_activated == (2,)


def test_any_one_precondition_is_enough_and_the_earliest_wait_is_due() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(
            1,
            ("users_absent", 100),
            ("task_waited", 60),
            ("task_waited_in_previous_step", 20),
            team_ids=["secondary"],
        ),
    ]
    result = advance(steps, None, directory(ann="online"), T0, T0)
    assert result.next_due == seconds(20)
    assert advance(steps, None, directory(), T0, T0).newly_activated == (0, 1)


def test_steps_cascade_in_one_evaluation() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("users_offline", 100), team_ids=["secondary"]),
        step(2, ("users_offline", 100), team_ids=["night"]),
        step(3, ("task_waited_in_previous_step", 0), user_ids=["boss"]),
    ]
    result = advance(steps, None, directory(eve="online"), T0, seconds(5))
    assert result.newly_activated == (0, 1, 2, 3)
    assert result.progress.activated_at == (T0, seconds(5), seconds(5), seconds(5))
    assert result.offered_to == {"ann", "bob", "cat", "dan", "eve", "boss"}


def test_cascade_stops_at_the_first_step_whose_preconditions_do_not_hold() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("users_offline", 100), team_ids=["secondary"]),
        step(2, ("users_offline", 100), team_ids=["night"]),
    ]
    result = advance(steps, None, directory(cat="online"), T0, T0)
    assert result.newly_activated == (0, 1)
    assert "eve" not in result.offered_to


def test_assignment_is_incremental_when_people_come_back_online() -> None:
    first = advance(PRIMARY_THEN_SECONDARY, None, directory(), T0, T0)
    assert first.newly_activated == (0, 1)
    back = advance(
        PRIMARY_THEN_SECONDARY, first.progress, directory(ann="online", bob="online"), T0, T0
    )
    assert back.progress == first.progress
    assert back.newly_activated == ()
    assert back.offered_to == {"ann", "bob", "cat", "dan"}


def test_a_later_step_never_skips_an_earlier_one() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("task_waited", 60), team_ids=["secondary"]),
        step(2, ("users_offline", 0), team_ids=["night"]),  # always true on its own
    ]
    result = advance(steps, None, directory(ann="online"), T0, seconds(59))
    assert result.newly_activated == (0,)
    assert "eve" not in result.offered_to


def test_previous_steps_with_nobody_in_them_count_as_all_offline() -> None:
    steps = [
        step(0, team_ids=["team-with-no-members"]),
        step(1, ("users_absent", 100), team_ids=["secondary"]),
    ]
    result = advance(steps, None, directory(), T0, T0)
    assert result.newly_activated == (0, 1)
    assert result.trace[0] == "step 0 in effect at once → no users"
    assert "no users in previous steps (counts as 100% absent)" in result.trace[1]


def test_a_router_edited_to_fewer_steps_keeps_the_progress_it_made() -> None:
    steps = [
        step(0, team_ids=["primary"]),
        step(1, ("users_offline", 100), team_ids=["secondary"]),
        step(2, ("users_offline", 100), team_ids=["night"]),
    ]
    made = advance(steps, None, directory(), T0, T0).progress
    assert made.active_steps == 3
    shorter = advance(steps[:1], made, directory(), T0, seconds(1))
    assert shorter.progress == made
    assert shorter.offered_to == {"ann", "bob"}
    assert shorter.next_due is None


def test_a_router_needs_a_step() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        advance([], None, directory(), T0, T0)


def test_step_users_are_users_plus_team_members_plus_organization_users() -> None:
    people = Directory(
        team_members=TEAMS,
        organization_users={"partner": frozenset({"pat", "ann"})},
        presence={},
    )
    chosen = step(
        0, user_ids=["zed"], team_ids=["primary", "unknown"], organization_ids=["partner"]
    )
    assert step_users(chosen, people) == {"zed", "ann", "bob", "pat"}


def test_trace_lists_at_most_ten_users() -> None:
    many = [f"u{n:02}" for n in range(12)]
    result = advance([step(0, user_ids=many)], None, directory(), T0, T0)
    assert result.reason == "step 0 in effect at once → users " + ", ".join(many[:10]) + (
        " and 2 more"
    )


# -- validation ---------------------------------------------------------------------------------


def test_valid_steps_have_no_problems() -> None:
    assert validate_steps(PRIMARY_THEN_SECONDARY) == []


@pytest.mark.parametrize(
    ("steps", "problems"),
    [
        ([], [FieldProblem("steps", "a router needs at least one step")]),
        (
            [step(0, ("task_waited", 5))],
            [
                FieldProblem(
                    "steps[0].preconditions", "must be empty: the first step takes effect at once"
                )
            ],
        ),
        (
            [step(0), step(1)],
            [
                FieldProblem(
                    "steps[1].preconditions",
                    "needs at least one precondition: without one the step never takes effect",
                )
            ],
        ),
        (
            [step(0), step(2, ("task_waited", 5))],
            [FieldProblem("steps[1].index", "is 2; steps are numbered 0, 1, … in order")],
        ),
    ],
)
def test_invalid_steps_are_named(steps: list[RouterStep], problems: list[FieldProblem]) -> None:
    assert validate_steps(steps) == problems


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "users_offline", "value": 101},
        {"type": "users_absent", "value": -1},
        {"type": "task_waited", "value": -0.5},
        {"type": "task_waited", "value": float("inf")},
        {"type": "agents_busy", "value": 1},
        {"type": "task_waited", "value": 1, "condition": "x"},
        {"value": 10},
    ],
)
def test_bad_preconditions_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Precondition.model_validate(raw)


def test_preconditions_are_the_seeds_json_shape() -> None:
    parsed = Precondition.model_validate({"type": "task_waited", "value": 100})
    assert parsed.model_dump() == {"type": "task_waited", "value": 100.0}
    assert parsed.wait == timedelta(seconds=100)


def test_parse_steps_accepts_the_seeds_shape_and_numbers_steps_by_position() -> None:
    raw = [
        {
            "id": "3c9b6f0e-0000-4000-8000-000000000000",
            "index": 7,  # read-only in the seed: the position decides
            "preconditions": [],
            "organization_ids": [],
            "team_ids": ["primary"],
            "user_ids": [],
            "created_at": "2024-05-06T09:00:00Z",
            "created_by_user_id": "u1",
            "created_by_user": {"id": "u1"},
            "updated_at": "2024-05-06T09:00:00Z",
            "updated_by_user_id": "u1",
            "updated_by_user": {"id": "u1"},
        },
        {
            "preconditions": [{"type": "users_offline", "value": 100}],
            "organization_ids": [],
            "team_ids": ["secondary"],
            "user_ids": [],
        },
    ]
    steps = parse_steps(raw)
    assert [s.index for s in steps] == [0, 1]
    assert steps[1].preconditions == [Precondition(type="users_offline", value=100)]


EMPTY_STEP: dict[str, Any] = {
    "preconditions": [],
    "organization_ids": [],
    "team_ids": [],
    "user_ids": [],
}


def test_parse_steps_names_every_bad_field() -> None:
    raw = [
        {**EMPTY_STEP, "team_ids": "primary"},
        {
            **EMPTY_STEP,
            "preconditions": [{"type": "users_offline", "value": 200}],
            "colour": "red",
        },
        "not a step",
    ]
    with pytest.raises(InvalidInput) as caught:
        parse_steps(raw)
    fields = [problem.field for problem in caught.value.fields]
    assert fields == [
        "steps[0].team_ids",
        "steps[1].preconditions[0]",
        "steps[1].colour",
        "steps[2]",
    ]


def test_parse_steps_checks_the_router_as_a_whole() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_steps([EMPTY_STEP, EMPTY_STEP])
    assert [p.field for p in caught.value.fields] == ["steps[1].preconditions"]
    with pytest.raises(InvalidInput):
        parse_steps({"steps": []})


def test_parse_steps_requires_every_array_the_seed_marks_required() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_steps([{"team_ids": ["primary"]}])
    assert [p.field for p in caught.value.fields] == [
        "steps[0].preconditions",
        "steps[0].organization_ids",
        "steps[0].user_ids",
    ]


@pytest.mark.parametrize("value", [1.5, 10.0, "10", True, None])
def test_a_precondition_value_is_an_integer(value: object) -> None:
    later = {**EMPTY_STEP, "preconditions": [{"type": "task_waited", "value": value}]}
    with pytest.raises(InvalidInput) as caught:
        parse_steps([EMPTY_STEP, later])
    assert [p.field for p in caught.value.fields] == ["steps[1].preconditions[0].value"]


def test_a_stored_step_drops_the_apis_read_only_attributes_but_keeps_its_index() -> None:
    stored = {
        "id": "3c9b6f0e-0000-4000-8000-000000000000",
        "index": 1,
        **EMPTY_STEP,
        "preconditions": [{"type": "task_waited", "value": 5}],
        "created_at": "2024-05-06T09:00:00+00:00",
        "created_by_user_id": None,
        "updated_at": "2024-05-06T09:00:00+00:00",
        "updated_by_user_id": None,
    }
    assert stored_step(stored) == step(1, ("task_waited", 5))


def test_scope_names_each_user_team_and_organization_outside_the_reachable_ones() -> None:
    steps = [
        step(0, user_ids=["ann", "zed", "ghost"], team_ids=["primary", "partner-team", "theirs"]),
        RouterStep(
            index=1,
            preconditions=[Precondition(type="task_waited", value=5)],
            organization_ids=["acme", "partner", "globex"],
        ),
    ]
    problems = scope_problems(
        steps,
        "acme",
        frozenset({"acme", "partner"}),
        {"ann": "acme", "zed": "globex"},
        {"primary": "acme", "partner-team": "partner", "theirs": "globex"},
    )
    # An unknown user gets the same answer as another organization's: nothing to probe.
    # A partner may be named as an organization, never through its teams or users.
    assert [p.field for p in problems] == [
        "steps[0].team_ids[1]",
        "steps[0].team_ids[2]",
        "steps[0].user_ids[1]",
        "steps[0].user_ids[2]",
        "steps[1].organization_ids[2]",
    ]
    assert problems[2].problem == problems[3].problem


# -- properties ---------------------------------------------------------------------------------

USERS = ("a", "b", "c", "d", "e", "f")
PROPERTY_DIRECTORY = {
    "team_members": {"t1": frozenset({"a", "b"}), "t2": frozenset({"c", "d"}), "t3": frozenset()},
    "organization_users": {"o1": frozenset({"e", "f"}), "o2": frozenset({"a"})},
}
presences = st.dictionaries(
    st.sampled_from(USERS), st.sampled_from(["online", "offline", "absent"])
)
user_preconditions = st.builds(
    Precondition,
    type=st.sampled_from(["users_offline", "users_absent"]),
    value=st.integers(0, 100) | st.floats(0, 100),
)
wait_preconditions = st.builds(
    Precondition,
    type=st.sampled_from(["task_waited", "task_waited_in_previous_step"]),
    value=st.integers(0, 60) | st.floats(0, 60),
)


# Built once: hypothesis validates a strategy the first time it draws from it.
later_preconditions = st.lists(user_preconditions | wait_preconditions, min_size=1, max_size=3)
step_user_ids = st.lists(st.sampled_from(USERS), max_size=2, unique=True)
step_team_ids = st.lists(st.sampled_from(["t1", "t2", "t3", "tx"]), max_size=2)
step_organization_ids = st.lists(st.sampled_from(["o1", "o2"]), max_size=1)


@st.composite
def routers(draw: st.DrawFn) -> list[RouterStep]:
    count = draw(st.integers(1, 5))
    return [
        RouterStep(
            index=index,
            preconditions=[] if index == 0 else draw(later_preconditions),
            user_ids=draw(step_user_ids),
            team_ids=draw(step_team_ids),
            organization_ids=draw(step_organization_ids),
        )
        for index in range(count)
    ]


# Each evaluation: how long after the previous one it happens, and everyone's presence then.
evaluations = st.lists(
    st.tuples(st.integers(0, 40) | st.floats(0, 40), presences), min_size=1, max_size=8
)


def _holds_by_the_seed(
    precondition: Precondition,
    previous_users: frozenset[str],
    people: Directory,
    created_at: datetime,
    previous_at: datetime,
    now: datetime,
) -> bool:
    """An independent reading of the seed's precondition table, with exact fractions."""
    if precondition.type in ("users_offline", "users_absent"):
        if not previous_users:
            return True
        bad = {"offline", "absent"} if precondition.type == "users_offline" else {"absent"}
        share = sum(people.presence.get(u, "absent") in bad for u in previous_users)
        return Fraction(share * 100, len(previous_users)) >= Fraction(precondition.value)
    since = created_at if precondition.type == "task_waited" else previous_at
    return now - since >= timedelta(seconds=precondition.value)


def _check_activation_reasons(
    steps: list[RouterStep], result: Evaluation, people: Directory, now: datetime
) -> None:
    activated = result.progress.activated_at
    for index in range(1, len(steps)):
        previous = frozenset().union(*(step_users(s, people) for s in steps[:index]))
        if index >= len(activated):
            # The first step that did not take effect: none of its preconditions held.
            assert not any(
                _holds_by_the_seed(p, previous, people, T0, activated[-1], now)
                for p in steps[index].preconditions
            )
            return
        if index in result.newly_activated:
            assert any(
                _holds_by_the_seed(p, previous, people, T0, activated[index - 1], now)
                for p in steps[index].preconditions
            )


@settings(max_examples=200, deadline=None)
@given(steps=routers(), plan=evaluations)
def test_escalation_properties(steps: list[RouterStep], plan: list[tuple[float, Any]]) -> None:
    progress: Progress | None = None
    offered: frozenset[str] = frozenset()
    now = T0
    for gap, presence in plan:
        now += timedelta(seconds=gap)
        people = Directory(**PROPERTY_DIRECTORY, presence=presence)
        before = progress.activated_at if progress else ()
        result = advance(steps, progress, people, T0, now)
        activated = result.progress.activated_at

        # (a) the steps in effect are a prefix, and the new ones follow the old ones in order
        assert 1 <= len(activated) <= len(steps)
        assert result.newly_activated == tuple(range(len(before), len(activated)))
        assert list(activated) == sorted(activated)
        # (b) progress never shrinks and earlier activation times never change
        assert activated[: len(before)] == before
        # (c) the offer only grows, and is exactly the users of the steps in effect
        assert offered <= result.offered_to
        assert result.offered_to == frozenset().union(
            *(step_users(s, people) for s in steps[: len(activated)])
        )
        # (d) a step took effect only when one of its preconditions held, and no later
        _check_activation_reasons(steps, result, people, now)
        # (e) the due time is in the future, and at that time the next step takes effect
        if result.next_due is not None:
            assert result.next_due > now
            assert len(activated) < len(steps)
            due = advance(steps, result.progress, people, T0, result.next_due)
            assert due.newly_activated[:1] == (len(activated),)
        # Evaluating again at the same moment changes nothing.
        again = advance(steps, result.progress, people, T0, now)
        assert again.newly_activated == ()
        assert again.progress == result.progress

        progress, offered = result.progress, result.offered_to
