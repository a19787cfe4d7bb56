"""Router steps and their preconditions in giosg's JSON shape, as the API and the store hold them.

A router's first step takes effect at once; each later step needs at least one precondition
(`{"type": ..., "value": ...}`): a percentage of the previous steps' users offline or absent,
or seconds the task has waited (in all, or in the previous step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bridge.errors import FieldProblem, InvalidInput, field_path

PreconditionType = Literal[
    "users_offline", "users_absent", "task_waited", "task_waited_in_previous_step"
]

# The seed marks these attributes of routers and steps read-only: the server sets them, so a
# client that PUTs back what it read must not be refused for sending them.
SERVER_SET_FIELDS = frozenset(
    {
        "id",
        "created_at",
        "created_by_user_id",
        "created_by_user",
        "updated_at",
        "updated_by_user_id",
        "updated_by_user",
    }
)
_READ_ONLY_STEP_FIELDS = SERVER_SET_FIELDS | {"index"}
# The seed marks these required in every step it is sent (each may be an empty array).
_REQUIRED_STEP_FIELDS = ("preconditions", "organization_ids", "team_ids", "user_ids")


class Precondition(BaseModel):
    """When a later step may take effect: a percentage of users, or seconds waited."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    type: PreconditionType
    value: float = Field(ge=0)

    # Built once so an evaluation does no float-to-timedelta conversion.
    _wait: timedelta = PrivateAttr(default=timedelta(0))

    @model_validator(mode="after")
    def _percent_at_most_100(self) -> Self:
        if self.is_about_users and self.value > 100:
            raise ValueError(f"{self.type} is a percentage: value must be 0 to 100")
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Precompute the wait as a timedelta."""
        if not self.is_about_users:
            self._wait = timedelta(seconds=self.value)

    @property
    def is_about_users(self) -> bool:
        """Whether the value is a percentage of users rather than seconds."""
        return self.type in ("users_offline", "users_absent")

    @property
    def wait(self) -> timedelta:
        """The wait in seconds as a timedelta (zero for the user preconditions)."""
        return self._wait


class RouterStep(BaseModel):
    """A set of users, teams and organizations a pending chat is offered to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    preconditions: list[Precondition] = Field(default_factory=list)
    organization_ids: list[str] = Field(default_factory=list)
    team_ids: list[str] = Field(default_factory=list)
    user_ids: list[str] = Field(default_factory=list)


def validate_steps(steps: Sequence[RouterStep]) -> list[FieldProblem]:
    """The problems with a router's steps as a whole; empty when they are valid."""
    if not steps:
        return [FieldProblem("steps", "a router needs at least one step")]
    problems: list[FieldProblem] = []
    for position, step in enumerate(steps):
        where = f"steps[{position}]"
        if step.index != position:
            problems.append(
                FieldProblem(
                    f"{where}.index", f"is {step.index}; steps are numbered 0, 1, … in order"
                )
            )
        if position == 0 and step.preconditions:
            problems.append(
                FieldProblem(
                    f"{where}.preconditions",
                    "must be empty: the first step takes effect at once",
                )
            )
        elif position > 0 and not step.preconditions:
            problems.append(
                FieldProblem(
                    f"{where}.preconditions",
                    "needs at least one precondition: without one the step never takes effect",
                )
            )
    return problems


def parse_steps(raw: object) -> list[RouterStep]:
    """Validate a `steps` array in the seed's JSON shape; raise InvalidInput naming each field.

    giosg sets `index` (and ids and timestamps) itself, so they are ignored and each step is
    numbered by its position, as the seed says: the first item gets index 0. The seed's
    required attributes must be present, and a precondition's `value` is an integer.
    """
    if not isinstance(raw, list):
        raise InvalidInput(
            "steps must be an array", [FieldProblem("steps", "must be an array of steps")]
        )
    steps: list[RouterStep] = []
    problems: list[FieldProblem] = []
    for position, item in enumerate(raw):
        where = f"steps[{position}]"
        if not isinstance(item, Mapping):
            problems.append(FieldProblem(where, "must be an object"))
            continue
        data = {key: value for key, value in item.items() if key not in _READ_ONLY_STEP_FIELDS}
        shape = _seed_shape_problems(where, data)
        try:
            step = RouterStep.model_validate({**data, "index": position})
        except ValidationError as error:
            found = [
                FieldProblem(field_path(detail["loc"], where), detail["msg"])
                for detail in error.errors()
            ]
        else:
            found = []
            steps.append(step)
        named = {problem.field for problem in found}
        problems.extend([*found, *(p for p in shape if p.field not in named)])
    if not problems:
        problems = validate_steps(steps)
    if problems:
        raise InvalidInput("the router's steps are invalid", problems)
    return steps


def _seed_shape_problems(where: str, data: Mapping[str, Any]) -> list[FieldProblem]:
    """What the model's lenient defaults would let through but the seed does not."""
    problems = [
        FieldProblem(f"{where}.{key}", "Field required (it may be an empty array)")
        for key in _REQUIRED_STEP_FIELDS
        if key not in data
    ]
    preconditions = data.get("preconditions")
    for position, precondition in enumerate(
        preconditions if isinstance(preconditions, list) else []
    ):
        value = precondition.get("value") if isinstance(precondition, Mapping) else None
        # bool is an int subclass and 1.0 a float: the seed's type is integer, so neither.
        if value is not None and type(value) is not int:
            problems.append(
                FieldProblem(f"{where}.preconditions[{position}].value", "must be an integer")
            )
    return problems


def stored_step(data: Mapping[str, Any]) -> RouterStep:
    """A step as the store keeps it (with the API's read-only attributes), for the engine."""
    return RouterStep.model_validate(
        {
            key: value
            for key, value in data.items()
            if key == "index" or key not in _READ_ONLY_STEP_FIELDS
        }
    )
