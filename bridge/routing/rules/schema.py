"""The rule schema: conditions, actions and named rules, validated once at load.

Rules are data, never code: a condition names a fact (the region code, a customer field
or label, a metadata key) and one operator (equals, one_of, exists, prefix, or a number
range). A bad rule stops the service with a message that names it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

Scalar = str | int | float | bool
Number = int | float

CUSTOMER_FIELDS = ("id", "email", "firstname", "lastname", "labels")
FIELD_NAMES = ("region", *(f"customer.{name}" for name in CUSTOMER_FIELDS))
LABELS = "customer.labels"
MAX_NAME = 128
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")

_MODEL = ConfigDict(frozen=True, extra="forbid")


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
        **{op: (_is_number, "must be a number") for op in RANGE_OPERATORS},
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
    @field_validator("equals", "one_of", "exists", "prefix", *RANGE_OPERATORS, mode="before")
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
        if any(getattr(self, name) is not None for name in RANGE_OPERATORS):
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

    def bounds(self) -> tuple[Number | None, bool, Number | None, bool]:
        """A range as (low, low included, high, high included); None is unbounded."""
        low = self.gt if self.gt is not None else self.gte
        high = self.lt if self.lt is not None else self.lte
        return low, self.gte is not None, high, self.lte is not None

    def _check_range(self) -> None:
        if self.field == LABELS:
            raise _problem(f"{LABELS}: labels take equals, one_of, exists or prefix")
        if self.gt is not None and self.gte is not None:
            raise _problem(f"{self.field}: give gt or gte, not both")
        if self.lt is not None and self.lte is not None:
            raise _problem(f"{self.field}: give lt or lte, not both")
        low, low_in, high, high_in = self.bounds()
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
            for op in RANGE_OPERATORS
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
