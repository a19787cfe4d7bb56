"""What a handler declares about itself for the API document: models, answers, credential.

A route module makes one `Operations` group per credential and decorates each handler:

    doc = Operations("Bot side", Access.BOT)

    @routes.post("/v1/handoffs")
    @doc(
        "Open a handoff",
        body=HandoffRequest,
        answers={201: Conversation, 200: Conversation},
        errors=(404, 409),
    )
    async def create_handoff(request: web.Request) -> web.Response: ...

The method and path are not repeated: the document reads them from the app's router, so a
declaration cannot name a route that does not exist, and a route without a declaration
fails the document's coverage test. Bodies and query strings name the pydantic models the
handler validates with, so the document cannot drift from what is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

# The attribute a decorated handler carries its declaration in.
DECLARATION = "__openapi_operation__"

H = TypeVar("H", bound=Callable[..., Any])


class Access(StrEnum):
    """Which credential a route takes, as bridge/api/auth.py and each handler check it."""

    PUBLIC = "public"
    BOT = "bot"  # BRIDGE_SECURITY__API_TOKEN
    # The bot's token, or an operator's (admin or organization) acting for the agent.
    BOT_OR_OPERATOR = "bot_or_operator"
    ADMIN = "admin"  # BRIDGE_SECURITY__ADMIN_TOKEN
    DIRECTORY = "directory"  # the admin token, or an organization token for its own
    ORGANIZATION = "organization"  # an organization token (the giosg-compatible routers API)
    SIGNED = "signed"  # a Standard Webhooks signature with an integration secret
    PLATFORM = "platform"  # the platform's own signature, header or URL secret
    LINK = "link"  # a signed console or desk link in the path


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer: its JSON model (None: any JSON), or files of other types."""

    model: type[BaseModel] | None
    description: str = ""
    media_types: tuple[str, ...] = ("application/json",)
    headers: Mapping[str, str] = field(default_factory=dict)


AnswerSpec = type[BaseModel] | Answer


@dataclass(frozen=True, slots=True)
class Operation:
    """Everything the document says about one route besides its method and path."""

    summary: str
    tag: str
    access: Access
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    # A body the handler takes as it is (a platform's own wire format), described by text.
    raw_body: str | None = None
    body_optional: bool = False
    query: type[BaseModel] | None = None
    description: str | None = None
    # For a route that answers any method: the methods the document lists for it.
    methods: tuple[str, ...] = ()
    examples: Mapping[str, Any] = field(default_factory=dict)


def _answer(spec: AnswerSpec) -> Answer:
    return spec if isinstance(spec, Answer) else Answer(spec)


@dataclass(frozen=True, slots=True)
class Operations:
    """A group of routes that share a tag and a credential; called to declare each one."""

    tag: str
    access: Access
    # Errors every route of the group may answer (beyond those every route may).
    errors: tuple[int, ...] = ()

    def describe(
        self,
        summary: str,
        *,
        answers: Mapping[int, AnswerSpec],
        errors: Iterable[int] = (),
        body: type[BaseModel] | None = None,
        raw_body: str | None = None,
        body_optional: bool = False,
        query: type[BaseModel] | None = None,
        description: str | None = None,
        methods: Iterable[str] = (),
        examples: Mapping[str, Any] | None = None,
    ) -> Operation:
        """One route's declaration in this group."""
        return Operation(
            summary=summary,
            tag=self.tag,
            access=self.access,
            answers={status: _answer(spec) for status, spec in answers.items()},
            errors=tuple(sorted({*self.errors, *errors})),
            body=body,
            raw_body=raw_body,
            body_optional=body_optional,
            query=query,
            description=description,
            methods=tuple(methods),
            examples=dict(examples or {}),
        )

    def __call__(self, summary: str, **details: Any) -> Callable[[H], H]:
        """Attach the declaration (`describe`'s arguments) to the handler, returned unchanged."""
        declared = self.describe(summary, **details)

        def attach(handler: H) -> H:
            setattr(handler, DECLARATION, declared)
            return handler

        return attach


def declaration_of(handler: object) -> Operation | None:
    """The declaration a handler carries, or None when it has none."""
    found = getattr(handler, DECLARATION, None)
    return found if isinstance(found, Operation) else None
