"""Metadata rules: an ordered list per main channel; the first rule whose conditions hold wins.

Rules are data, never code: a condition names a fact (the region code, a customer field
or label, a metadata key) and one operator (equals, one_of, exists, prefix, or a number
range). A rule set is validated once at load, so a bad rule stops the service with a
message that names it. Its conditions are compiled into closures, and each rule's most
selective condition (equals, one_of, prefix, a number range, or a metadata key that must
exist) into an index, so a decision looks a few values up and checks only the rules that
could match.

Values compare the way someone writing YAML means them: text matches text exactly,
true/false match only booleans, and numbers match numbers *or numeric text*, because
chat metadata often arrives as text ("cart_total": "150"). Anything else never matches.
"""

from __future__ import annotations

import dataclasses
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bridge.errors import ConfigError

Scalar = str | int | float | bool
Number = int | float

CUSTOMER_FIELDS = ("id", "email", "firstname", "lastname", "labels")
FIELD_NAMES = ("region", *(f"customer.{name}" for name in CUSTOMER_FIELDS))
LABELS = "customer.labels"
MAX_NAME = 128

_MODEL = ConfigDict(frozen=True, extra="forbid")
_RANGE = ("gt", "gte", "lt", "lte")
_NUMERIC = re.compile(r"[+-]?(?:(?P<whole>\d+)|\d+\.\d*|\.\d+)(?P<exponent>[eE][+-]?\d+)?")


def _problem(message: str) -> PydanticCustomError:
    # A custom error keeps pydantic's "Value error, " prefix out of startup messages.
    return PydanticCustomError("rule", message)


def _shown(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    # math.isfinite would overflow on a huge int; every int is a finite number anyway.
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _as_id(value: Any) -> Any:
    # Ids are text; a whole number (YAML `team_id: 7`) becomes text, as customer ids do.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise _problem("must be a non-empty id")
    return value


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


# Operator -> (what its operand accepts, what to say otherwise).
_OPERAND: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType(
    {
        "equals": (_is_scalar, "must be text, a number or true/false"),
        "one_of": (_is_scalar, "must be a non-empty list of text, numbers or true/false"),
        "exists": (lambda value: isinstance(value, bool), "must be true or false"),
        "prefix": (lambda value: isinstance(value, str) and value != "", "must be non-empty text"),
        **{op: (_is_number, "must be a number") for op in _RANGE},
    }
)


class Condition(BaseModel):
    """One test of one fact; exactly one operator group is given."""

    model_config = _MODEL

    field: str
    equals: Scalar | None = None
    one_of: list[Scalar] | None = None
    exists: bool | None = None
    prefix: str | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None

    @field_validator("field", mode="before")
    @classmethod
    def _known_field(cls, value: Any) -> Any:
        if isinstance(value, str) and (
            value in FIELD_NAMES or (value.startswith("metadata.") and len(value) > 9)
        ):
            return value
        raise _problem(f"{value!r} is not one of {', '.join(FIELD_NAMES)} or metadata.<key>")

    # Only the exact types get through, so pydantic's lax mode never turns "yes" into
    # true or true into 1; a problem names the condition's field.
    @field_validator("equals", "one_of", "exists", "prefix", *_RANGE, mode="before")
    @classmethod
    def _typed(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        accepts, expected = _OPERAND[info.field_name or ""]
        if info.field_name == "one_of" and isinstance(value, list | tuple) and value:
            bad = [i for i, item in enumerate(value) if not accepts(item)]
            if not bad:
                return list(value)
            expected = f"item {bad[0]} must be text, a number or true/false"
        elif info.field_name != "one_of" and accepts(value):
            return value
        field = info.data.get("field")
        raise _problem(f"{field}: {expected}" if field else expected)

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        groups = [
            name
            for name in ("equals", "one_of", "exists", "prefix")
            if getattr(self, name) is not None
        ]
        if any(getattr(self, name) is not None for name in _RANGE):
            groups.append("a number range")
        if len(groups) != 1:
            got = " and ".join(groups) if groups else "none"
            raise _problem(
                f"{self.field}: give exactly one of equals, one_of, exists, prefix or a number"
                f" range (gt, gte, lt, lte); got {got}"
            )
        if groups[0] == "a number range":
            self._check_range()
        return self

    def _check_range(self) -> None:
        if self.field == LABELS:
            raise _problem(f"{LABELS}: labels take equals, one_of, exists or prefix")
        if self.gt is not None and self.gte is not None:
            raise _problem(f"{self.field}: give gt or gte, not both")
        if self.lt is not None and self.lte is not None:
            raise _problem(f"{self.field}: give lt or lte, not both")
        low, low_in, high, high_in = _bounds(self)
        if (
            low is not None
            and high is not None
            and (low > high or (low == high and not (low_in and high_in)))
        ):
            raise _problem(f"{self.field}: the range is empty, so the rule could never match")

    def describe(self) -> str:
        """The condition as a short phrase, e.g. `metadata.plan = 'vip'`."""
        name, labels = self.field, self.field == LABELS
        if self.equals is not None:
            return (
                f"{name} has {_shown(self.equals)}" if labels else f"{name} = {_shown(self.equals)}"
            )
        if self.one_of is not None:
            listed = ", ".join(_shown(value) for value in self.one_of)
            return f"{name} has any of ({listed})" if labels else f"{name} in ({listed})"
        if self.exists is not None:
            if labels:
                return f"{name} has a label" if self.exists else f"{name} has no label"
            return f"{name} exists" if self.exists else f"{name} is missing"
        if self.prefix is not None:
            if labels:
                return f"{name} has a label starting with {self.prefix!r}"
            return f"{name} starts with {self.prefix!r}"
        signs = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        bounds = [
            f"{signs[op]} {_shown(getattr(self, op))}"
            for op in _RANGE
            if getattr(self, op) is not None
        ]
        return f"{name} " + " and ".join(bounds)


class RuleActions(BaseModel):
    """What a matching rule decides; at least one action is given."""

    model_config = _MODEL

    channel: str | None = None
    team_id: str | None = None
    router_id: str | None = None
    agent_ids: list[str] | None = None
    assignee: str | None = None
    priority: int | None = None

    @field_validator("channel", "team_id", "router_id", "assignee", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return None if value is None else _as_id(value)

    @field_validator("agent_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, list | tuple) or not value:
            raise _problem("must be a non-empty list of agent ids")
        return [_as_id(item) for item in value]

    @field_validator("priority", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise _problem("must be a whole number")

    @model_validator(mode="after")
    def _something(self) -> RuleActions:
        if not self.describe():
            raise _problem(
                "give at least one of channel, team_id, router_id, agent_ids, assignee, priority"
            )
        return self

    def describe(self) -> str:
        """The actions as a short phrase, e.g. `team 'vip', priority 5`."""
        parts = []
        if self.channel is not None:
            parts.append(f"channel {self.channel!r}")
        if self.team_id is not None:
            parts.append(f"team {self.team_id!r}")
        if self.router_id is not None:
            parts.append(f"router {self.router_id!r}")
        if self.agent_ids is not None:
            parts.append("agents " + ", ".join(repr(agent) for agent in self.agent_ids))
        if self.assignee is not None:
            parts.append(f"assignee {self.assignee!r}")
        if self.priority is not None:
            parts.append(f"priority {self.priority}")
        return ", ".join(parts)


class Rule(BaseModel):
    """A named rule: when every condition holds (an empty list always does), then act."""

    model_config = _MODEL

    name: str
    when: list[Condition] = []
    then: RuleActions

    @field_validator("name", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
            raise _problem(f"must be non-empty text of at most {MAX_NAME} characters")
        return value.strip()

    def describe(self) -> str:
        """The conditions and actions, e.g. `(metadata.plan = 'vip') → team 'vip'`."""
        when = " and ".join(condition.describe() for condition in self.when) or "always"
        return f"({when}) → {self.then.describe()}"


_NO_FACTS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Facts:
    """What rules can test about a would-be conversation; anything may be missing."""

    region: str | None = None
    customer: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _NO_FACTS)
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _NO_FACTS)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that decided (`index` counts from 0, the explanation from 1) and why."""

    index: int
    rule: Rule
    explanation: str


# -- compiled form -------------------------------------------------------------------------

_Getter = Callable[[Facts], Any]
_Predicate = Callable[[Facts], bool]


def _number(value: Any) -> Number | None:
    """A number, or numeric text as a number; None for anything else, booleans included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        found = _NUMERIC.fullmatch(value)
        if found is None:
            return None
        try:
            # Whole numbers stay exact ints; int() refuses absurdly long digit strings.
            whole = found["whole"] is not None and found["exponent"] is None
            number: Number = int(value) if whole else float(value)
        except ValueError:
            return None
        return number if not isinstance(number, float) or math.isfinite(number) else None
    return None


def _present(value: Any) -> bool:
    # Bots often send "" or [] for "unknown", so those count as missing; 0 and false do not.
    return not (value is None or value == "" or (isinstance(value, list | tuple) and not value))


def _labels(facts: Facts) -> Sequence[Any]:
    labels = facts.customer.get("labels")
    return labels if isinstance(labels, list | tuple) else ()


def _getter(name: str) -> _Getter:
    if name == "region":
        return lambda facts: facts.region
    if name == LABELS:
        return _labels
    source, _, key = name.partition(".")
    if source == "customer":
        return lambda facts: facts.customer.get(key)
    # Metadata is flat: everything after "metadata." is the key, dots included.
    return lambda facts: facts.metadata.get(key)


@dataclass(frozen=True, slots=True)
class _Values:
    """Values split by kind, so 1, 1.0, "1" and true compare the way a user means them."""

    texts: frozenset[str]
    numbers: frozenset[Number]
    flags: frozenset[bool]

    @classmethod
    def of(cls, values: Iterable[Scalar]) -> _Values:
        items = list(values)
        return cls(
            frozenset(v for v in items if isinstance(v, str)),
            frozenset(v for v in items if not isinstance(v, str | bool)),
            frozenset(v for v in items if isinstance(v, bool)),
        )

    def matches(self, value: Any) -> bool:
        """Whether `value` is one of these values."""
        if isinstance(value, bool):
            return value in self.flags
        if isinstance(value, str) and value in self.texts:
            return True
        return bool(self.numbers) and _number(value) in self.numbers


def _each_or_one(name: str, test: Callable[[Any], bool]) -> _Predicate:
    """Apply `test` to the fact, or for labels to each label until one passes."""
    if name == LABELS:
        return lambda facts: any(test(label) for label in _labels(facts))
    get = _getter(name)
    return lambda facts: test(get(facts))


def _bounds(condition: Condition) -> tuple[Number | None, bool, Number | None, bool]:
    """A range as (low, low included, high, high included); None is unbounded."""
    low = condition.gt if condition.gt is not None else condition.gte
    high = condition.lt if condition.lt is not None else condition.lte
    return low, condition.gte is not None, high, condition.lte is not None


def _range_test(condition: Condition) -> Callable[[Number], bool]:
    """Whether a number lies in the condition's range, with the bounds unpacked once."""
    low, low_in, high, high_in = _bounds(condition)

    def within(number: Number) -> bool:
        if low is not None and (number < low if low_in else number <= low):
            return False
        return high is None or (number <= high if high_in else number < high)

    return within


def _compile(condition: Condition) -> _Predicate:
    """A predicate for one condition: reads one fact and compares, nothing else."""
    name = condition.field
    if condition.equals is not None or condition.one_of is not None:
        return _each_or_one(name, _Values.of(_operands(condition)).matches)
    if condition.exists is not None:
        has = _each_or_one(name, _present)
        return has if condition.exists else lambda facts: not has(facts)
    if condition.prefix is not None:
        prefix = condition.prefix
        return _each_or_one(name, lambda v: isinstance(v, str) and v.startswith(prefix))
    within = _range_test(condition)
    return _each_or_one(name, lambda v: (number := _number(v)) is not None and within(number))


def _operands(condition: Condition) -> list[Scalar]:
    return [condition.equals] if condition.equals is not None else list(condition.one_of or ())


def _selectivity(condition: Condition) -> tuple[int, int] | None:
    """How well a condition narrows the rules when indexed (lower is better); None: it can't."""
    if condition.equals is not None or condition.one_of is not None:
        return 0, len(_operands(condition))
    if condition.prefix is not None or any(getattr(condition, op) is not None for op in _RANGE):
        return 1, 0
    if condition.exists and condition.field.startswith("metadata."):
        return 2, 0  # one index for every key, see _Present
    return None


class _Index:
    """For one fact: the rules whose indexed condition could hold, found by lookup.

    Values go into dicts by kind, prefixes into one dict per prefix length (a text finds
    them with one slice and lookup per length). Ranges are cut at their bounds into slots,
    alternately an open stretch between two bounds and a bound itself; each slot lists the
    ranges that contain it, so a number finds its rules with one bisection.
    """

    def __init__(self, name: str) -> None:
        self.get = _getter(name)
        self.many = name == LABELS
        self.texts: dict[str, list[int]] = {}
        self.numbers: dict[Number, list[int]] = {}
        self.flags: dict[bool, list[int]] = {}
        self.prefixes: dict[int, dict[str, list[int]]] = {}
        self.ranges: list[tuple[int, Condition]] = []
        self.points: list[Number] = []
        self.slots: list[tuple[int, ...]] = []

    def add(self, condition: Condition, rule: int) -> None:
        if condition.prefix is not None:
            by_text = self.prefixes.setdefault(len(condition.prefix), {})
            by_text.setdefault(condition.prefix, []).append(rule)
            return
        if condition.equals is None and condition.one_of is None:
            self.ranges.append((rule, condition))
            return
        values = _Values.of(_operands(condition))
        for text in values.texts:
            self.texts.setdefault(text, []).append(rule)
        for number in values.numbers:
            self.numbers.setdefault(number, []).append(rule)
        for flag in values.flags:
            self.flags.setdefault(flag, []).append(rule)

    def build_slots(self) -> None:
        if not self.ranges:
            return
        bounds = {b for _, c in self.ranges for b in (c.gt, c.gte, c.lt, c.lte) if b is not None}
        self.points = sorted(bounds)
        slots: list[list[int]] = [[] for _ in range(2 * len(self.points) + 1)]
        for rule, condition in self.ranges:
            low, _, high, _ = _bounds(condition)
            within = _range_test(condition)
            for i, point in enumerate(self.points):
                # Bounds are points, so the open stretch before `point` lies wholly inside
                # the range or wholly outside it.
                previous = self.points[i - 1] if i else None
                if (low is None or (previous is not None and low <= previous)) and (
                    high is None or point <= high
                ):
                    slots[2 * i].append(rule)
                if within(point):
                    slots[2 * i + 1].append(rule)
            if high is None:
                slots[-1].append(rule)
        self.slots = [tuple(slot) for slot in slots]

    def collect(self, facts: Facts, into: set[int]) -> None:
        # Mirrors the predicates: a rule is a candidate iff its indexed condition holds.
        value = self.get(facts)
        for item in value if self.many else (value,):
            if isinstance(item, bool):
                into.update(self.flags.get(item, ()))
                continue
            if isinstance(item, str):
                into.update(self.texts.get(item, ()))
                # A text shorter than `length` cannot equal a key of that length.
                for length, by_text in self.prefixes.items():
                    into.update(by_text.get(item[:length], ()))
            number = _number(item) if self.numbers or self.slots else None
            if number is None:
                continue
            into.update(self.numbers.get(number, ()))
            if self.slots:
                i = bisect_left(self.points, number)
                exact = i < len(self.points) and self.points[i] == number
                into.update(self.slots[2 * i + 1 if exact else 2 * i])


class _Present:
    """The rules whose indexed condition is `metadata.<key> exists: true`, by key.

    One index for all keys, so a decision costs a lookup per key the chat sends (or per
    indexed key, whichever are fewer) instead of a check per rule.
    """

    def __init__(self) -> None:
        self.by_key: dict[str, list[int]] = {}

    def add(self, condition: Condition, rule: int) -> None:
        self.by_key.setdefault(condition.field.removeprefix("metadata."), []).append(rule)

    def collect(self, facts: Facts, into: set[int]) -> None:
        # Mirrors the predicate: the key's value is present (not None, "" or []).
        metadata, by_key = facts.metadata, self.by_key
        if len(metadata) < len(by_key):
            for key, value in metadata.items():
                rules = by_key.get(key)
                if rules is not None and _present(value):
                    into.update(rules)
            return
        for key, rules in by_key.items():
            if _present(metadata.get(key)):
                into.update(rules)


def _where(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class RuleSet:
    """A main channel's rules, validated and compiled once; `first_match` decides."""

    def __init__(
        self,
        main_channel: str,
        rules: Sequence[Rule | Mapping[str, Any]],
        *,
        channels: Collection[str],
        teams: Collection[str] | None = None,
    ) -> None:
        self._main = main_channel
        # A rule may always send a conversation to its main channel itself.
        own = frozenset(channels) | {main_channel}
        known_teams = None if teams is None else frozenset(teams)
        problems: list[str] = []
        parsed: list[Rule] = []
        names: dict[str, int] = {}
        for index, raw in enumerate(rules):
            label = self._label(index, raw)
            try:
                rule = Rule.model_validate(raw)
            except ValidationError as exc:
                problems.extend(
                    f"{label}: {_where(e['loc'])}: {e['msg']}"
                    if e["loc"]
                    else f"{label}: {e['msg']}"
                    for e in exc.errors()
                )
                continue
            if rule.name in names:
                problems.append(f"{label}: name: repeats rules[{names[rule.name]}]")
            names.setdefault(rule.name, index)
            target = rule.then.channel
            if target is not None and target not in own:
                known = ", ".join(repr(name) for name in sorted(own))
                problems.append(
                    f"{label}: then.channel: {target!r} is not a channel of {main_channel!r}"
                    f" (known: {known})"
                )
            team = rule.then.team_id
            if known_teams is not None and team is not None and team not in known_teams:
                problems.append(f"{label}: then.team_id: unknown team {team!r}")
            parsed.append(rule)
        if problems:
            raise ConfigError("; ".join(problems))
        self._rules = tuple(parsed)
        self._compile()

    def _label(self, index: int, raw: Rule | Mapping[str, Any]) -> str:
        name = raw.name if isinstance(raw, Rule) else None
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and raw["name"].strip():
            name = raw["name"].strip()
        return f"channels.{self._main}.rules[{index}] ({name or 'unnamed'})"

    def _compile(self) -> None:
        indexes: dict[str, _Index] = {}
        present = _Present()
        unindexed: list[int] = []
        checks: list[tuple[_Predicate, ...]] = []
        for position, rule in enumerate(self._rules):
            # Index the most selective condition; only the others are checked per call.
            ranked = [
                (rank, i)
                for i, condition in enumerate(rule.when)
                if (rank := _selectivity(condition)) is not None
            ]
            chosen = min(ranked)[1] if ranked else None
            if chosen is None:
                unindexed.append(position)
            elif rule.when[chosen].exists:
                present.add(rule.when[chosen], position)
            else:
                field = rule.when[chosen].field
                indexes.setdefault(field, _Index(field)).add(rule.when[chosen], position)
            checks.append(tuple(_compile(c) for i, c in enumerate(rule.when) if i != chosen))
        for index in indexes.values():
            index.build_slots()
        self._indexes: tuple[_Index | _Present, ...] = (
            (*indexes.values(), present) if present.by_key else tuple(indexes.values())
        )
        self._unindexed = tuple(unindexed)
        self._checks = tuple(checks)
        # Matches are built once: a decision returns a shared, immutable object.
        self._matches = tuple(
            RuleMatch(i, rule, f'rule {i + 1} "{rule.name}" {rule.describe()}')
            for i, rule in enumerate(self._rules)
        )

    @property
    def main_channel(self) -> str:
        """The main channel these rules belong to."""
        return self._main

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are tried."""
        return self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def first_match(self, facts: Facts) -> RuleMatch | None:
        """The first rule, in order, whose conditions all hold; None when no rule does."""
        found: set[int] = set()
        for index in self._indexes:
            index.collect(facts, found)
        checks = self._checks
        first = len(checks)  # the first indexed candidate that holds; past the end: none
        for position in sorted(found):
            for check in checks[position]:
                if not check(facts):
                    break
            else:
                first = position
                break
        # Indexed and unindexed rules are disjoint, so rather than merge and sort the two,
        # an unindexed rule is tried only when it comes before that candidate.
        for position in self._unindexed:
            if position > first:
                break
            for check in checks[position]:
                if not check(facts):
                    break
            else:
                return self._matches[position]
        return self._matches[first] if first < len(checks) else None
