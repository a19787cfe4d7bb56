"""The rule index: each rule's most selective condition, so a decision looks values up.

A rule set indexes one condition per rule (equals, one_of, prefix, a number range, or a
metadata key that must exist) and checks only the rules that could match.
"""

from __future__ import annotations

from bisect import bisect_left

from bridge.routing.rules.predicates import Values, as_number, getter, operands, present, range_test
from bridge.routing.rules.schema import LABELS, RANGE_OPERATORS, Condition, Facts, Number


def selectivity(condition: Condition) -> tuple[int, int] | None:
    """How well a condition narrows the rules when indexed (lower is better); None: it can't."""
    if condition.equals is not None or condition.one_of is not None:
        return 0, len(operands(condition))
    if condition.prefix is not None or any(
        getattr(condition, op) is not None for op in RANGE_OPERATORS
    ):
        return 1, 0
    if condition.exists and condition.field.startswith("metadata."):
        return 2, 0  # one index for every key, see PresentIndex
    return None


class FieldIndex:
    """For one fact: the rules whose indexed condition could hold, found by lookup.

    Values go into dicts by kind, prefixes into one dict per prefix length (a text finds
    them with one slice and lookup per length). Ranges are cut at their bounds into slots,
    alternately an open stretch between two bounds and a bound itself; each slot lists the
    ranges that contain it, so a number finds its rules with one bisection.
    """

    def __init__(self, name: str) -> None:
        self.get = getter(name)
        self.many = name == LABELS
        self.texts: dict[str, list[int]] = {}
        self.numbers: dict[Number, list[int]] = {}
        self.flags: dict[bool, list[int]] = {}
        self.prefixes: dict[int, dict[str, list[int]]] = {}
        self.ranges: list[tuple[int, Condition]] = []
        self.points: list[Number] = []
        self.slots: list[tuple[int, ...]] = []

    def add(self, condition: Condition, rule: int) -> None:
        """Index rule number `rule` under its chosen condition."""
        if condition.prefix is not None:
            by_text = self.prefixes.setdefault(len(condition.prefix), {})
            by_text.setdefault(condition.prefix, []).append(rule)
            return
        if condition.equals is None and condition.one_of is None:
            self.ranges.append((rule, condition))
            return
        values = Values.of(operands(condition))
        for text in values.texts:
            self.texts.setdefault(text, []).append(rule)
        for number in values.numbers:
            self.numbers.setdefault(number, []).append(rule)
        for flag in values.flags:
            self.flags.setdefault(flag, []).append(rule)

    def build_slots(self) -> None:
        """Cut the number line at the ranges' bounds, once every rule is added."""
        if not self.ranges:
            return
        bounds = {b for _, c in self.ranges for b in (c.gt, c.gte, c.lt, c.lte) if b is not None}
        self.points = sorted(bounds)
        slots: list[list[int]] = [[] for _ in range(2 * len(self.points) + 1)]
        for rule, condition in self.ranges:
            low, _, high, _ = condition.bounds()
            within = range_test(condition)
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
        """Add the rules whose indexed condition holds for these facts."""
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
            number = as_number(item) if self.numbers or self.slots else None
            if number is None:
                continue
            into.update(self.numbers.get(number, ()))
            if self.slots:
                i = bisect_left(self.points, number)
                exact = i < len(self.points) and self.points[i] == number
                into.update(self.slots[2 * i + 1 if exact else 2 * i])


class PresentIndex:
    """The rules whose indexed condition is `metadata.<key> exists: true`, by key.

    One index for all keys, so a decision costs a lookup per key the chat sends (or per
    indexed key, whichever are fewer) instead of a check per rule.
    """

    def __init__(self) -> None:
        self.by_key: dict[str, list[int]] = {}

    def add(self, condition: Condition, rule: int) -> None:
        """Index rule number `rule` under the metadata key it needs."""
        self.by_key.setdefault(condition.field.removeprefix("metadata."), []).append(rule)

    def collect(self, facts: Facts, into: set[int]) -> None:
        """Add the rules whose key the facts' metadata gives."""
        # Mirrors the predicate: the key's value is present (not None, "" or []).
        metadata, by_key = facts.metadata, self.by_key
        if len(metadata) < len(by_key):
            for key, value in metadata.items():
                rules = by_key.get(key)
                if rules is not None and present(value):
                    into.update(rules)
            return
        for key, rules in by_key.items():
            if present(metadata.get(key)):
                into.update(rules)
