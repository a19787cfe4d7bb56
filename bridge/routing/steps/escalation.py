"""Escalation through a router's steps, as giosg's Routers API describes it.

A router's first step takes effect at once, when the task is created. Each later step takes
effect when ANY of its preconditions matches, and only once every earlier step has. Assignment
is incremental: a step that took effect stays in effect, even if its preconditions stop holding
or the people in earlier steps come back online, so `Progress` only grows.

Preconditions, in giosg's JSON shape `{"type": ..., "value": ...}`:

- `users_offline`: at least `value`% of the users of all previous steps are offline or absent;
- `users_absent`: at least `value`% of them are absent (not logged in);
- `task_waited`: the task has waited at least `value` seconds in all;
- `task_waited_in_previous_step`: at least `value` seconds have passed since the previous step
  took effect (giosg's prose names it; its type table omits it).

When the previous steps have no users at all, nobody there can take the chat, so both user
preconditions count that as 100% offline and absent: the chat escalates instead of being
stranded behind an empty step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bridge.routing.steps.schema import Precondition, RouterStep

Presence = Literal["online", "offline", "absent"]

_TRACE_USERS = 10
_NO_USERS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Directory:
    """Who is in which team and organization, and everyone's presence."""

    team_members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    organization_users: Mapping[str, frozenset[str]] = field(default_factory=dict)
    presence: Mapping[str, Presence] = field(default_factory=dict)
    # Chats each agent may still take (capacity less active chats); an agent not listed
    # is not known to be full.
    spare_capacity: Mapping[str, int] = field(default_factory=dict)

    def presence_of(self, user_id: str) -> Presence:
        """A user's presence; someone the directory has never seen is not logged in."""
        return self.presence.get(user_id, "absent")


def step_users(step: RouterStep, directory: Directory) -> frozenset[str]:
    """A step's users: its user_ids, the members of its teams, the users of its organizations."""
    teams = (directory.team_members.get(team, _NO_USERS) for team in step.team_ids)
    orgs = (directory.organization_users.get(org, _NO_USERS) for org in step.organization_ids)
    return frozenset(step.user_ids).union(*teams, *orgs)


@dataclass(frozen=True, slots=True)
class Progress:
    """When each step took effect, in order: always a prefix of the router's steps."""

    activated_at: tuple[datetime, ...]

    @property
    def active_steps(self) -> int:
        """How many steps are in effect."""
        return len(self.activated_at)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one evaluation: progress, who the chat is offered to, and why."""

    progress: Progress
    newly_activated: tuple[int, ...]
    offered_to: frozenset[str]
    # The caller keeps a (durable) timer for this; None when only presence can move things on.
    next_due: datetime | None
    trace: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The trace as one sentence."""
        return "; ".join(self.trace)


@dataclass(slots=True)
class _Previous:
    """Presence counts over the users of all steps in effect so far, kept up as steps join."""

    total: int = 0
    not_online: int = 0
    absent: int = 0

    def add(self, users: Iterable[str], directory: Directory) -> None:
        """Count users who are not counted yet (the caller passes only new ones)."""
        for user in users:
            self.total += 1
            presence = directory.presence_of(user)
            if presence != "online":
                self.not_online += 1
                if presence == "absent":
                    self.absent += 1


def advance(
    steps: Sequence[RouterStep],
    progress: Progress | None,
    directory: Directory,
    created_at: datetime,
    now: datetime,
) -> Evaluation:
    """Bring a pending task's escalation up to `now`; steps that took effect stay in effect.

    Several steps may take effect in one call (each at `now`). `offered_to` is computed from
    the current steps and directory: the caller stores it, unioned with what it offered before,
    because the seed keeps an assignment even when the router itself changes later.
    """
    if not steps:
        raise ValueError("a router needs at least one step")
    trace: list[str] = []
    newly: list[int] = []
    if progress is None or not progress.activated_at:
        activated = [created_at]
        newly.append(0)
    else:
        activated = list(progress.activated_at)

    offered: set[str] = set()
    # A router edited to fewer steps keeps its progress: only the steps that still exist count.
    for index in range(min(len(activated), len(steps))):
        offered |= step_users(steps[index], directory)
    if newly:
        trace.append(f"step 0 in effect at once → {_describe_users(frozenset(offered))}")
    previous = _Previous()
    previous.add(offered, directory)

    # Cascade: a step that takes effect now may let the next one take effect at once too.
    waiting = False
    while len(activated) < len(steps):
        index = len(activated)
        why = _first_match(steps[index], previous, created_at, activated[-1], now)
        if why is None:
            waiting = True
            break
        activated.append(now)
        newly.append(index)
        users = step_users(steps[index], directory)
        previous.add(users - offered, directory)
        offered |= users
        trace.append(f"step {index} in effect{why} → {_describe_users(users)}")

    next_due: datetime | None = None
    if waiting:
        index = len(activated)
        next_due = _next_due(steps[index], created_at, activated[-1])
        wait = _describe_wait(steps[index], previous, created_at, activated[-1], now, next_due)
        trace.append(f"step {index} waits: {wait}")

    return Evaluation(
        progress=Progress(tuple(activated)),
        newly_activated=tuple(newly),
        offered_to=frozenset(offered),
        next_due=next_due,
        trace=tuple(trace),
    )


def _user_share(precondition: Precondition, previous: _Previous) -> int:
    return previous.not_online if precondition.type == "users_offline" else previous.absent


def _holds(
    precondition: Precondition,
    previous: _Previous,
    created_at: datetime,
    previous_at: datetime,
    now: datetime,
) -> bool:
    if precondition.is_about_users:
        if previous.total == 0:
            return True
        # Compare counts, not a rounded percentage: 2 of 3 is 66.66…%, below a 66.67 threshold.
        return _user_share(precondition, previous) * 100 >= precondition.value * previous.total
    since = created_at if precondition.type == "task_waited" else previous_at
    return now - since >= precondition.wait


def _first_match(
    step: RouterStep,
    previous: _Previous,
    created_at: datetime,
    previous_at: datetime,
    now: datetime,
) -> str | None:
    """Why the step takes effect now (a trace fragment), or None if no precondition holds."""
    for precondition in step.preconditions:
        if _holds(precondition, previous, created_at, previous_at, now):
            return _describe(precondition, previous, created_at, previous_at, now, met=True)
    return None


def _next_due(step: RouterStep, created_at: datetime, previous_at: datetime) -> datetime | None:
    # Only the next inactive step can take effect next; later ones wait for it by definition.
    times = [
        (created_at if p.type == "task_waited" else previous_at) + p.wait
        for p in step.preconditions
        if not p.is_about_users
    ]
    return min(times, default=None)


def _describe(
    precondition: Precondition,
    previous: _Previous,
    created_at: datetime,
    previous_at: datetime,
    now: datetime,
    *,
    met: bool,
) -> str:
    word = "offline" if precondition.type == "users_offline" else "absent"
    if precondition.is_about_users:
        if previous.total == 0:
            return f": no users in previous steps (counts as 100% {word})"
        share = _user_share(precondition, previous)
        percent = _number(100 * share / previous.total)
        sign = "≥" if met else "<"
        return (
            f": {percent}% of previous users {word} "
            f"({share} of {previous.total}; {sign} {_number(precondition.value)}%)"
        )
    waited = now - (created_at if precondition.type == "task_waited" else previous_at)
    where = "" if precondition.type == "task_waited" else " in the previous step"
    if met:
        return f" after {_seconds(waited)} s waited{where}"
    return f" {_seconds(waited)} s waited{where} (< {_number(precondition.value)} s)"


def _describe_wait(
    step: RouterStep,
    previous: _Previous,
    created_at: datetime,
    previous_at: datetime,
    now: datetime,
    next_due: datetime | None,
) -> str:
    parts = [
        _describe(p, previous, created_at, previous_at, now, met=False).lstrip(": ")
        for p in step.preconditions
    ]
    if next_due is not None:
        parts.append(f"due in {_seconds(next_due - now)} s")
    return ", ".join(parts)


def _describe_users(users: frozenset[str]) -> str:
    if not users:
        return "no users"
    names = sorted(users)
    shown = ", ".join(names[:_TRACE_USERS])
    more = len(names) - _TRACE_USERS
    return f"users {shown}" + (f" and {more} more" if more > 0 else "")


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _seconds(span: timedelta) -> str:
    return _number(span.total_seconds())
