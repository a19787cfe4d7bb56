"""Files a message carries: links with a name, a MIME type and a size, never bytes.

The bridge has no blob store and does not download attachments: it checks what a sender
declares (the `attachments` settings: how many, how large, which types) and that each URL
is one the outbound URL policy would let it call (so a link into the bridge's own network
is refused with a 422, as a `callback_url` is), then stores and passes the links on. A
platform without file messages gets them as `name: url` lines in the text.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.errors import FieldProblem, InvalidInput, field_path
from bridge.resolver import OutboundGuard
from bridge.settings.attachments import MIME_TOKEN, AttachmentSettings

MAX_URL = 2048
MAX_NAME = 255
MAX_SIZE = 2**53  # what every JSON reader keeps exactly
_CONTROL = "".join(chr(c) for c in (*range(0x20), 0x7F))


class Attachment(BaseModel):
    """A file a message carries: a link the receiver opens, with what the sender says it is."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    url: str = Field(
        min_length=1,
        max_length=MAX_URL,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+\S*$",
        description="Where the file is (http or https); the bridge passes it on, never fetches it.",
    )
    name: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The file name shown to the reader.",
    )
    mime_type: str = Field(
        max_length=255,
        pattern=rf"^{MIME_TOKEN}/{MIME_TOKEN}$",
        description="`type/subtype` in lower case, e.g. `image/png`.",
    )
    # Strict: `true` or "12" is no size (a lax int would read them as 1 and 12).
    size: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SIZE,
        strict=True,
        description="In bytes, as the sender declares it.",
    )

    @field_validator("url")
    @classmethod
    def _http_link(cls, value: str) -> str:
        # The pattern says http(s) and a host; this refuses what urlsplit cannot read
        # (a broken IPv6 literal, a port that is no number).
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError("is not a valid URL") from exc
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        return value

    @field_validator("mime_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def link(self) -> str:
        """The attachment as one line of text, for platforms without file messages."""
        return f"{self.name}: {self.url}"

    def is_image(self) -> bool:
        """Whether readers may show it inline as a picture."""
        return self.mime_type.startswith("image/")


def with_links(text: str, attachments: Sequence[Attachment]) -> str:
    """The text followed by one `name: url` line per attachment."""
    return "\n".join([*([text] if text else []), *(a.link() for a in attachments)])


def stored(attachments: Sequence[Attachment]) -> list[dict[str, Any]] | None:
    """The column's value: a JSON list, or NULL for a message without files."""
    return [a.model_dump() for a in attachments] or None


def read_stored(value: Any) -> tuple[Attachment, ...]:
    """Attachments from a stored JSON list (NULL, and rows written before them, read as none)."""
    if not isinstance(value, list):
        return ()
    return tuple(Attachment.model_validate(item) for item in value)


def from_platform(
    url: Any, name: Any, mime_type: Any = None, size: Any = None
) -> Attachment | None:
    """A file a platform's webhook names, or None when it is not one the bridge can keep.

    The MIME type is guessed from the name when the platform sends none.
    """
    if not isinstance(url, str) or not url:
        return None
    label = name if isinstance(name, str) and name.strip() else url.rsplit("/", 1)[-1] or url
    kind = mime_type if isinstance(mime_type, str) and mime_type else None
    kind = kind or mimetypes.guess_type(label)[0] or "application/octet-stream"
    declared = size if isinstance(size, int) and not isinstance(size, bool) else None
    try:
        return Attachment(url=url, name=label[:MAX_NAME], mime_type=kind, size=declared)
    except ValidationError:
        return None


def mime_allowed(mime_type: str, patterns: Iterable[str]) -> bool:
    """Whether `image/png` matches one of `image/*`, `*/*` or `image/png`."""
    kind = mime_type.split("/", 1)[0]
    return any(p in ("*/*", mime_type) or p == f"{kind}/*" for p in patterns)


def limit_problems(
    attachments: Sequence[Attachment], limits: AttachmentSettings, prefix: str
) -> list[FieldProblem]:
    """What the `attachments` settings refuse, each naming its field (`attachments[0].size`)."""
    if len(attachments) > limits.max_count:
        return [FieldProblem(prefix, f"at most {limits.max_count} attachments")]
    problems: list[FieldProblem] = []
    for index, attachment in enumerate(attachments):
        where = field_path([index], prefix)
        if attachment.size is not None and attachment.size > limits.max_size_bytes:
            problems.append(
                FieldProblem(f"{where}.size", f"is over the limit of {limits.max_size_bytes} bytes")
            )
        if not mime_allowed(attachment.mime_type, limits.allowed_mime_types):
            problems.append(
                FieldProblem(f"{where}.mime_type", f"{attachment.mime_type} is not allowed here")
            )
    return problems


class AttachmentCheck:
    """Refuses attachments the settings or the outbound URL policy would not let through."""

    def __init__(self, limits: AttachmentSettings, guard: OutboundGuard | None = None) -> None:
        self.limits = limits
        # None checks the limits alone (services built without an app, in tests).
        self._guard = guard

    async def problems(
        self, attachments: Sequence[Attachment], prefix: str = "attachments"
    ) -> list[FieldProblem]:
        """Every problem with these attachments, each naming its field."""
        if not attachments:
            return []
        problems = limit_problems(attachments, self.limits, prefix)
        if problems or self._guard is None:
            return problems
        # Resolved side by side: a message's links cost one DNS wait, not one per file.
        guard = self._guard
        refusals = await asyncio.gather(*(guard.refusal(a.url) for a in attachments))
        return [
            FieldProblem(f"{field_path([index], prefix)}.url", f"may not be passed on: {why}")
            for index, why in enumerate(refusals)
            if why is not None
        ]

    async def check(self, attachments: Sequence[Attachment], prefix: str = "attachments") -> None:
        """InvalidInput (422) naming each refused field; nothing when all may pass."""
        problems = await self.problems(attachments, prefix)
        if problems:
            raise InvalidInput("the request has attachments the bridge may not pass on", problems)
