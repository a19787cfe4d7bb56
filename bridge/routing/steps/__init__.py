"""Routers' steps: escalation through them, as giosg's Routers API describes it.

`schema` holds a step and its preconditions in the API's JSON shape (parsing, and the checks
of the steps as a whole), `scope` whom a router's steps may name, and `escalation` who a
pending chat is offered to at which step, with a trace of why.
"""

from bridge.routing.steps.escalation import (
    Directory,
    Evaluation,
    Presence,
    Progress,
    advance,
    step_users,
)
from bridge.routing.steps.schema import (
    Precondition,
    PreconditionType,
    RouterStep,
    parse_steps,
    stored_step,
    validate_steps,
)
from bridge.routing.steps.scope import scope_problems

__all__ = [
    "Directory",
    "Evaluation",
    "Precondition",
    "PreconditionType",
    "Presence",
    "Progress",
    "RouterStep",
    "advance",
    "parse_steps",
    "scope_problems",
    "step_users",
    "stored_step",
    "validate_steps",
]
