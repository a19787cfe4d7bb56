"""Log lines carry no secrets: URL tokens, query strings, credentials, configured values."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bridge import logs
from bridge.db.engine import create_engine
from bridge.logs import REDACTED, Redactor, secret_values
from bridge.settings import DatabaseSettings


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("path=/webhooks/kommunicate/s3cr3t-url-token", "path=/webhooks/kommunicate/"),
        ("POST /bots/tovie/s3cr3t-url-token/selectDestination", "/bots/tovie/"),
        ("POST /bots/jivo/s3cr3t-url-token/reply HTTP/1.1", "/reply HTTP/1.1"),
        ("GET /console/c/s3cr3t-url-token HTTP/1.1", "GET /console/c/"),
        ("path=/console/api/s3cr3t-url-token/messages", "/messages"),
        ("url=https://bridge.example/console/desk/s3cr3t-url-token", "/console/desk/"),
        ("path=/console/desk-api/s3cr3t-url-token/take/c-1", "/take/c-1"),
        ("GET /console/supervisor/s3cr3t-url-token HTTP/1.1", "/console/supervisor/"),
        ("path=/console/supervisor-api/s3cr3t-url-token/events", "/events"),
        ("GET /console/api/x/events?after=1&s3cr3t-url-token HTTP/1.1", " HTTP/1.1"),
        ("https://hook.example/in?token=s3cr3t-url-token", "https://hook.example/in?"),
        ("Authorization: Bearer s3cr3t-url-token", "Authorization: "),
        ("{'authorization': 's3cr3t-url-token', 'x': 1}", "'x': 1"),
        ("calling with bearer s3cr3t-url-token now", " now"),
        ("X-Api-Key=s3cr3t-url-token", "X-Api-Key="),
        ("secret whsec_s3cr3t-url-token+/= leaked", " leaked"),
        ("postgresql://bridge:s3cr3t-url-token@db:5432/bridge", "@db:5432/bridge"),
    ],
)
def test_patterns_redact_credentials_and_keep_the_rest(line: str, kept: str) -> None:
    """Each credential shape is replaced; what is not a credential stays readable."""
    redacted = Redactor()(line)
    assert "s3cr3t-url-token" not in redacted
    assert REDACTED in redacted
    assert kept in redacted


def test_plain_lines_are_untouched() -> None:
    """Event names, ids, the webhook URL without a token and the static files stay as they are."""
    line = (
        "relay.delivered outbox_id=42 conversation=c-1 path=/webhooks/giosg "
        "GET /console/static/console.js why: is this a question? yes"
    )
    assert Redactor()(line) == line


def test_configured_values_are_redacted_in_every_form() -> None:
    """A configured secret is found as is, URL-encoded and JSON-escaped, anywhere in a line."""
    redact = Redactor()
    secret = "tok/en with spaces&" + secrets.token_hex(4)
    redact.add([secret, "short"])
    line = f"a {secret} b {secret.replace('/', '%2F').replace(' ', '%20').replace('&', '%26')}"
    assert redact(line) == f"a {REDACTED} b {REDACTED}"
    # Too short to match everywhere without eating ordinary words.
    assert redact("short") == "short"


def test_a_text_seen_clean_is_redacted_once_its_secret_is_known() -> None:
    # Short texts are remembered with their redaction; a secret configured later (one the
    # bridge generated at start) must not be let through by what was remembered before.
    redactor = Redactor()
    value = "s3cr3t-" + secrets.token_hex(8)
    line = f"token {value} in a short line"
    assert redactor(line) == line
    assert redactor(line) == line
    redactor.add([value])
    assert value not in redactor(line)
    assert REDACTED in redactor(line)
    long_line = line + " " + "x" * 400
    assert value not in redactor(long_line)


def test_ids_and_words_without_the_patterns_characters_are_left_as_they_are() -> None:
    """No pattern can change a text without `_`, white space, `:`, `=`, `/`, `?` or `@`,
    even one that spells a credential's name; a configured value is still found in it."""
    redactor = Redactor()
    secret = "s3cr3t" + secrets.token_hex(8)
    redactor.add([secret])
    for plain in ["AuthorizationBearer0basic", "4bf92f3577b34da6a3ce929d0e0e4736", "c-1.x+y"]:
        assert redactor(plain) == plain
    assert redactor(f"req{secret}x") == f"req{REDACTED}x"
    # The same words with one of those characters are redacted as before.
    assert redactor("Authorization:abc") == f"Authorization:{REDACTED}"
    assert redactor("bearer abc") == f"bearer {REDACTED}"


@pytest.mark.parametrize("value", [42, 4.2, True, None, "plain", ["a", 1], {"k": None}])
def test_plain_extra_values_keep_their_type(value: object) -> None:
    assert Redactor().value(value) == value
    assert type(Redactor().value(value)) is type(value)


def test_secret_values_come_from_secretstr_fields_only() -> None:
    """Within settings, SecretStr values count, and names and ids next to them do not."""

    class Options(BaseModel):
        api_token: SecretStr
        channel: str
        teams: list[str]
        nested: list[SecretStr]
        mapping: dict[str, SecretStr]

    options = Options(
        api_token=SecretStr("one-secret"),
        channel="mysite",
        teams=["support"],
        nested=[SecretStr("two-secret")],
        mapping={"k": SecretStr("three-secret")},
    )
    assert sorted(secret_values([options, "plain-secret", None])) == [
        "one-secret",
        "plain-secret",
        "three-secret",
        "two-secret",
    ]


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the service's handler into a buffer."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs." + secrets.token_hex(4))
    logger.handlers[:] = [logs.make_handler(stream)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.handlers.clear()


def test_the_handler_redacts_messages_extras_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """What reaches the output has no configured value in any part of the record."""
    logger, stream = captured
    secret = "configured-" + secrets.token_hex(8)
    logs.add_secrets(SecretStr(secret))
    logger.info("api.unhandled_error", extra={"path": f"/x/{secret}", "data": {"k": [secret]}})
    logger.warning("called %s", f"https://h.example/p?key={secret}")
    try:
        raise ValueError(f"boom {secret}")
    except ValueError:
        logger.exception("relay.unexpected_error", extra={"outbox_id": 1})
    output = stream.getvalue()
    assert secret not in output
    assert output.count(REDACTED) >= 4
    assert "api.unhandled_error" in output and "outbox_id=1" in output
    assert "ValueError: boom [redacted]" in output


def test_aiohttp_access_lines_are_redacted_once(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """The access line's own extras are not repeated; its path, query and headers are clean."""
    logger, stream = captured
    access = logging.getLogger("aiohttp.access")
    access.handlers[:] = logger.handlers
    access.propagate = False
    try:
        access.info(
            '127.0.0.1 "GET /console/c/tok3n-in-path?x=1 HTTP/1.1" 403 "%s"',
            "https://bridge.example/console/desk/tok3n-in-referer",
            extra={"first_request_line": "GET /console/c/tok3n-in-path?x=1 HTTP/1.1"},
        )
    finally:
        access.handlers.clear()
        access.propagate = True
    output = stream.getvalue()
    assert "tok3n" not in output and "x=1" not in output
    assert "first_request_line" not in output
    assert '"GET /console/c/[redacted]?[redacted] HTTP/1.1" 403' in output


def test_text_lines_stamp_the_time_as_logging_does() -> None:
    """The date and time, formatted once a second, read as logging's own formatter has them."""
    ours = logs.make_handler().formatter
    assert ours is not None
    plain = logging.Formatter("%(asctime)s")
    for created in [1_700_000_000.0, 1_700_000_000.5, 1_700_000_000.999, 1_700_000_001.25, 5.0]:
        record = logging.makeLogRecord({"created": created, "msecs": (created % 1) * 1000})
        assert ours.formatTime(record) == plain.formatTime(record)
        assert ours.formatTime(record, "%H") == plain.formatTime(record, "%H")


async def test_database_errors_quote_no_values(tmp_path: Path) -> None:
    """A failed statement's error names the statement, never the values it carried."""
    settings = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    engine = create_engine(settings)
    value = "secret-" + secrets.token_hex(8)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (v TEXT UNIQUE)"))
            await connection.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})
    finally:
        await engine.dispose()
    assert "INSERT INTO t" in str(raised.value)
    assert value not in str(raised.value)
