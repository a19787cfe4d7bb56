"""Attachments without the app: the model, the limits, link lines, and stored forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bridge.attachments import (
    Attachment,
    from_platform,
    limit_problems,
    mime_allowed,
    read_stored,
    with_links,
)
from bridge.errors import ConfigError
from bridge.relay.jobs import Message
from bridge.settings import AttachmentSettings, load_settings

SHOT = Attachment(url="https://f.example/s.png", name="s.png", mime_type="image/png", size=10)


@pytest.mark.parametrize(
    ("mime_type", "patterns", "allowed"),
    [
        ("image/png", ["image/*"], True),
        ("image/png", ["*/*"], True),
        ("application/pdf", ["application/pdf"], True),
        ("application/pdf", ["image/*", "application/zip"], False),
        ("imagex/png", ["image/*"], False),
    ],
)
def test_mime_patterns(mime_type: str, patterns: list[str], allowed: bool) -> None:
    assert mime_allowed(mime_type, patterns) is allowed


def test_limits_name_each_field() -> None:
    limits = AttachmentSettings(max_count=2, max_size_bytes=5, allowed_mime_types=["image/*"])
    pdf = Attachment(url="https://f.example/a.pdf", name="a.pdf", mime_type="application/pdf")
    problems = limit_problems([SHOT, pdf], limits, "history[1].attachments")
    assert [p.field for p in problems] == [
        "history[1].attachments[0].size",
        "history[1].attachments[1].mime_type",
    ]
    assert [p.field for p in limit_problems([pdf] * 3, limits, "attachments")] == ["attachments"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "javascript:alert(1)"),
        ("url", "https://"),
        ("url", "http://[::1/x.png"),
        ("url", "https://f.example:port/x.png"),
        ("name", "a\nb.png"),
        ("mime_type", "image"),
        ("mime_type", "image/png; charset=x"),
        ("size", -1),
    ],
)
def test_the_model_refuses_what_is_no_file_link(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Attachment.model_validate({**SHOT.model_dump(), field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_link_lines_follow_the_text() -> None:
    assert with_links("Look", [SHOT]) == "Look\ns.png: https://f.example/s.png"
    assert with_links("", [SHOT, SHOT]).count("\n") == 1


def test_platform_files_get_a_guessed_type_or_none_when_unusable() -> None:
    found = from_platform("https://f.example/u/r.pdf", None, None, 7)
    assert found is not None
    assert (found.name, found.mime_type, found.size) == ("r.pdf", "application/pdf", 7)
    unknown = from_platform("https://f.example/blob", "blob", "", True)
    assert unknown is not None and (unknown.mime_type, unknown.size) == (
        "application/octet-stream",
        None,
    )
    assert from_platform("ftp://f.example/a", "a") is None
    assert from_platform(None, "a") is None


def test_jobs_stored_before_attachments_still_read() -> None:
    sent_at = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    old = {"seq": 3, "role": "customer", "text": "Hi", "author": None, "id": None}
    message = Message.from_json({**old, "sent_at": sent_at.isoformat()})
    assert message.attachments == () and "attachments" not in message.to_json()
    with_file = Message(3, "customer", "", None, None, sent_at, (SHOT,))
    assert Message.from_json(with_file.to_json()) == with_file
    assert with_file.outbound().attachments == (SHOT,)
    assert read_stored(None) == ()


def test_a_bad_mime_pattern_stops_the_start() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, channels={"mysite": {}}, attachments={"allowed_mime_types": ["img"]})
    assert "attachments.allowed_mime_types" in str(caught.value)
