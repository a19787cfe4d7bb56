"""Conditions compiled into predicates: each reads one fact and compares, nothing else.

Values compare the way someone writing YAML means them: text matches text exactly,
true/false match only booleans, and numbers match numbers *or numeric text*, because
chat metadata often arrives as text ("cart_total": "150"). Anything else never matches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.routing.rules.schema import LABELS, Condition, Facts, Number, Scalar

Getter = Callable[[Facts], Any]
Predicate = Callable[[Facts], bool]

_NUMERIC = re.compile(r"[+-]?(?:(?P<whole>\d+)|\d+\.\d*|\.\d+)(?P<exponent>[eE][+-]?\d+)?")


def operands(condition: Condition) -> list[Scalar]:
    """The values an equals or one_of condition accepts (none for other operators)."""
    return [condition.equals] if condition.equals is not None else list(condition.one_of or ())


def as_number(value: Any) -> Number | None:
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


def present(value: Any) -> bool:
    """Whether a fact counts as given."""
    # Bots often send "" or [] for "unknown", so those count as missing; 0 and false do not.
    return not (value is None or value == "" or (isinstance(value, list | tuple) and not value))


def _labels(facts: Facts) -> Sequence[Any]:
    labels = facts.customer.get("labels")
    return labels if isinstance(labels, list | tuple) else ()


def getter(name: str) -> Getter:
    """How to read the fact `name` (a field name of the rule schema) from the facts."""
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
class Values:
    """Values split by kind, so 1, 1.0, "1" and true compare the way a user means them."""

    texts: frozenset[str]
    numbers: frozenset[Number]
    flags: frozenset[bool]

    @classmethod
    def of(cls, values: Iterable[Scalar]) -> Values:
        """Split a condition's operands by kind."""
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
        return bool(self.numbers) and as_number(value) in self.numbers


def _each_or_one(name: str, test: Callable[[Any], bool]) -> Predicate:
    """Apply `test` to the fact, or for labels to each label until one passes."""
    if name == LABELS:
        return lambda facts: any(test(label) for label in _labels(facts))
    get = getter(name)
    return lambda facts: test(get(facts))


def range_test(condition: Condition) -> Callable[[Number], bool]:
    """Whether a number lies in the condition's range, with the bounds unpacked once."""
    low, low_in, high, high_in = condition.bounds()

    def within(number: Number) -> bool:
        if low is not None and (number < low if low_in else number <= low):
            return False
        return high is None or (number <= high if high_in else number < high)

    return within


def compile_condition(condition: Condition) -> Predicate:
    """A predicate for one condition: reads one fact and compares, nothing else."""
    name = condition.field
    if condition.equals is not None or condition.one_of is not None:
        return _each_or_one(name, Values.of(operands(condition)).matches)
    if condition.exists is not None:
        has = _each_or_one(name, present)
        return has if condition.exists else lambda facts: not has(facts)
    if condition.prefix is not None:
        prefix = condition.prefix
        return _each_or_one(name, lambda v: isinstance(v, str) and v.startswith(prefix))
    within = range_test(condition)
    return _each_or_one(name, lambda v: (number := as_number(v)) is not None and within(number))
