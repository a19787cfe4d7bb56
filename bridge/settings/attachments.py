"""The `attachments` section: how many files a message may carry, how large, of what types."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# One side of a MIME type (RFC 6838's restricted-name), lower case.
MIME_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
# `type/subtype`, `type/*` or `*/*`.
_PATTERN = re.compile(rf"^(?:\*/\*|{MIME_TOKEN}/(?:\*|{MIME_TOKEN}))$")

# What customers and agents send in support chats: screenshots and photos, recordings,
# documents, archives. Executables and scripts are left out; an operator widens it.
DEFAULT_ALLOWED_MIME_TYPES = (
    "image/*",
    "audio/*",
    "video/*",
    "text/plain",
    "text/csv",
    "application/pdf",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
)


class AttachmentSettings(BaseModel):
    """Limits on the files a message carries (the bridge passes their URLs on, never bytes)."""

    model_config = ConfigDict(extra="forbid")

    max_count: int = Field(default=10, ge=0, le=100)
    # The size the sender declares: the bridge never downloads a file to measure it.
    max_size_bytes: int = Field(default=25 * 1024 * 1024, ge=0)
    # MIME types, with `image/*` for a whole type and `*/*` for any.
    allowed_mime_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_MIME_TYPES), max_length=200
    )

    @field_validator("allowed_mime_types")
    @classmethod
    def _patterns(cls, values: list[str]) -> list[str]:
        # Checked here so a typo stops the start, not every message with a file.
        lowered = [value.strip().lower() for value in values]
        for value in lowered:
            if not _PATTERN.match(value):
                raise ValueError(f"{value!r} is not a MIME type or a type/* pattern")
        return lowered
