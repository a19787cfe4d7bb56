"""Logging: stable event names with their context, as key=value text or JSON, and no secrets.

Every line passes through `redact` twice: a filter on the handler rewrites the record
(its message, its `extra=` values, its traceback) so that any other formatter sees the
redacted record, and the formatter redacts its finished line, so whatever it adds (an
aiohttp access line, an exception's repr) is covered too. Redacted are the token in the
URLs that carry one, query strings, `Authorization` values and bearer tokens,
Standard Webhooks secrets (`whsec_...`), passwords in URLs, and every secret value the
service was configured with (see `add_secrets`).

Every line also carries the context of the code that wrote it: the request's id, the
trace and span ids (bridge/tracing.py) and the conversation, when known (see `bind`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO
from urllib.parse import quote

from pydantic import BaseModel, SecretStr
from pythonjsonlogger.json import JsonFormatter

from bridge import tracing

REDACTED = "[redacted]"

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

# The path segment that is a credential, in the routes that take one in the URL:
# platform webhooks, bot APIs (Tovie, Jivo), console join, desk and supervisor links.
_PATH_TOKEN = re.compile(
    r"(/webhooks/[^/\s?#\"'<>]+/|/bots/[^/\s?#\"'<>]+/"
    r"|/console/(?:c|api|desk-api|desk|supervisor-api|supervisor)/)"
    # Not a route template's placeholder (`/console/c/{token}`): it names no credential.
    r"(?!\{\w+\}(?![^/\s?#\"'<>]))[^/\s?#\"'<>]+"
)
# A query string after a path or URL: tokens ride in them (`?token=`, signed links).
_QUERY = re.compile(r"((?:[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#\"'<>]+)?/[^\s?#\"'<>]*)\?[^\s#\"'<>]+")
# `Authorization: ...`, `'authorization': '...'`, `api_key=...` and their kin, quoted or not.
_HEADER = re.compile(
    r"(?i)((?:proxy-)?authorization|x-api-key|api[-_]?key|x-auth-token|set-cookie|cookie)"
    r"([\"']?\s*[:=]\s*[\"']?)[^\"'\n,}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]+")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=_-]+")
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@\"'<>]+:)[^\s/@\"'<>]+@")

# What any of the patterns above needs somewhere in a text: most log values (ids, names,
# numbers, event names) have none of it, and are left as they are after one search.
_MAYBE = re.compile(r"[/?@]|whsec_|(?i:authorization|api[-_]?key|auth-token|cookie|bearer|basic)")
# A character every pattern above needs to change a text: `_` (whsec_), white space (a
# bearer token), `:` or `=` (a header), `/` (a path, a query, a URL with a password). A
# text with none (a request id, a trace id, an event name) is let through after this one
# quick search: _MAYBE's case-insensitive words cost ten times as much on every id.
_NEEDED = re.compile(r"[\s:=/?@_]")
# Short texts recur (route templates, event names, channels): their redaction is kept.
_CACHED_LENGTH = 256
_CACHE_SIZE = 4096

# Shorter configured values are not matched everywhere: they would redact ordinary words,
# and a secret that short gives no protection anyway.
MIN_SECRET_LENGTH = 6


class Redactor:
    """Rewrites text so that no credential the patterns or the configuration know survives."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}

    def add(self, values: Iterable[str]) -> None:
        """Redact these values (and their URL- and JSON-escaped forms) wherever they appear."""
        forms = set()
        for value in values:
            if len(value) < MIN_SECRET_LENGTH:
                continue
            forms |= {value, quote(value, safe=""), quote(value), json.dumps(value)[1:-1]}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            # Longest first, so a value that contains another is replaced whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._known = re.compile("|".join(re.escape(value) for value in ordered))
            # What was clean may hold a value only now known to be secret.
            self._cache = {}

    def __call__(self, text: str) -> str:
        """The text with every credential replaced by [redacted]."""
        if len(text) > _CACHED_LENGTH:
            return self._redact(text)
        cache = self._cache
        done = cache.get(text)
        if done is None:
            done = self._redact(text)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[text] = done
        return done

    def _redact(self, text: str) -> str:
        known = self._known
        if known is not None:
            text = known.sub(REDACTED, text)
        if _NEEDED.search(text) is None or _MAYBE.search(text) is None:
            return text
        text = _WHSEC.sub(REDACTED, text)
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
        text = _HEADER.sub(rf"\1\2{REDACTED}", text)
        text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
        text = _PATH_TOKEN.sub(rf"\1{REDACTED}", text)
        return _QUERY.sub(rf"\1?{REDACTED}", text)

    def value(self, value: Any) -> Any:
        """An `extra=` value with its text redacted (containers item by item)."""
        kind = value.__class__
        if kind is str:
            return self(value)
        # Most values are plain: looked at by their exact type, before any isinstance.
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set):
            return [self.value(item) for item in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        text = str(value)
        cleaned = self(text)
        return value if cleaned == text else cleaned


redact = Redactor()


def add_secrets(*sources: Any) -> None:
    """Redact from every log line the secrets in these settings, options, or plain strings."""
    redact.add(secret_values(sources))


def secret_values(source: Any, *, plain: bool = True) -> list[str]:
    """Every SecretStr's value in a model (nested), mapping or list; `plain` strings too.

    Inside a model only SecretStr counts: its plain strings are names, URLs and ids.
    """
    if isinstance(source, SecretStr):
        return [source.get_secret_value()]
    if isinstance(source, str):
        return [source] if plain else []
    if isinstance(source, BaseModel):
        fields = [getattr(source, name) for name in type(source).model_fields]
        return [value for field in fields for value in secret_values(field, plain=False)]
    if isinstance(source, Mapping):
        source = list(source.values())
    if isinstance(source, list | tuple | set | frozenset):
        return [value for item in source for value in secret_values(item, plain=plain)]
    return []


# Records whose message, extras and traceback the filter has redacted: the text formatter
# then has nothing left to redact in the line made of them.
_redacted: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()


class RedactSecrets(logging.Filter):
    """Rewrites each record's message, `extra=` values and traceback without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record, redacted."""
        try:
            record.msg = redact(record.getMessage())
        except Exception:
            # A call with bad %-arguments: the handler reports it as logging does; the
            # formatter still redacts whatever it manages to write.
            return True
        record.args = None
        fields = record.__dict__
        for key in fields.keys() - _STANDARD:
            fields[key] = redact.value(fields[key])
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        _redacted.add(record)
        return True


_request_id: ContextVar[str | None] = ContextVar("bridge_request_id", default=None)
_conversation_id: ContextVar[str | None] = ContextVar("bridge_conversation_id", default=None)


@contextmanager
def bind(*, request_id: str | None = None, conversation_id: str | None = None) -> Iterator[None]:
    """Every line written inside the block carries this request and conversation id."""
    tokens = []
    if request_id is not None:
        tokens.append((_request_id, _request_id.set(request_id)))
    if conversation_id is not None:
        tokens.append((_conversation_id, _conversation_id.set(conversation_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_request_id() -> str | None:
    """The id of the request this code serves, if any."""
    return _request_id.get()


class ContextFields(logging.Filter):
    """Adds the request id, trace and span ids and conversation id in force to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only fields it does not carry already are added."""
        fields = record.__dict__
        request_id = _request_id.get()
        if request_id is not None and "request_id" not in fields:
            fields["request_id"] = request_id
        conversation_id = _conversation_id.get()
        if (
            conversation_id is not None
            and "conversation" not in fields
            and "conversation_id" not in fields
        ):
            fields["conversation_id"] = conversation_id
        trace = tracing.current()
        if trace is not None and "trace_id" not in fields:
            fields["trace_id"] = trace.trace_id
            fields["span_id"] = trace.span_id
        return True


class KeyValueFormatter(logging.Formatter):
    """`time level logger event key=value ...`, so `extra=` context is never lost."""

    # The last second's date and time as formatted (every line of a second shares them).
    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """As logging's, with the date and time formatted once a second."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, stamp = self._second
        if second != int(record.created):
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, stamp)  # one assignment: threads see a matching pair
        msec_format = self.default_msec_format
        return msec_format % (stamp, record.msecs) if msec_format else stamp

    def format(self, record: logging.LogRecord) -> str:
        """The line, redacted as a whole unless the filter redacted each of its parts."""
        base = super().format(record)
        # aiohttp's access line already holds what it passes as extras.
        if record.name == "aiohttp.access":
            return redact(base)
        extras = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items() if key not in _STANDARD
        )
        line = f"{base} {extras}" if extras else base
        # The time, level and logger name hold nothing secret; the rest went through the
        # filter (a record it could not redact, a bad %-format, is redacted here whole).
        return line if record in _redacted else redact(line)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: `ts`, `level`, `event`, `logger`, then the context."""

    # Uniform names for a log pipeline: services say `conversation`, the context says
    # `conversation_id`; both arrive as `conversation_id`.
    RENAMED = {
        "levelname": "level",
        "name": "logger",
        "message": "event",
        "conversation": "conversation_id",
        "exc_info": "traceback",
    }

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields=self.RENAMED,
            timestamp="ts",
            json_ensure_ascii=False,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """The fixed fields first, so every line reads the same way; every value redacted.

        Values, not the finished line: a pattern run over JSON text could take an escape
        (`\\"`) for part of a token and leave a line that is no longer JSON.
        """
        head = {key: log_data.pop(key) for key in ("ts", "level", "event", "logger")}
        return {key: redact.value(value) for key, value in (head | log_data).items()}

    # What the line's own fields are called; an `extra=` key of the same name (an inbound
    # event's id is `event`) is written as `extra.<key>` instead of replacing it.
    OWN = frozenset({"ts", "level", "event", "logger", "traceback"})

    def format(self, record: logging.LogRecord) -> str:
        """The line, its values redacted once more (what the formatter added included)."""
        fields = record.__dict__
        clashing = self.OWN & fields.keys()
        if clashing or (record.exc_info and record.exc_text):
            # A copy, so other handlers keep the record as it was. The traceback is the
            # one RedactSecrets rewrote, not formatted afresh from the exception.
            copied = {key: value for key, value in fields.items() if key not in clashing}
            copied |= {f"extra.{key}": fields[key] for key in clashing}
            if record.exc_text:
                copied["exc_info"] = None
            record = logging.makeLogRecord(copied)
        return super().format(record)


LogFormat = Literal["text", "json"]


def make_handler(stream: TextIO | None = None, log_format: LogFormat = "text") -> logging.Handler:
    """A handler writing redacted lines in `log_format` to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # On the handler, not a logger: aiohttp's loggers propagate to it, and a logger's
    # filter would not see its children's records. Context first, so it is redacted too.
    handler.addFilter(ContextFields())
    handler.addFilter(RedactSecrets())
    return handler


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Send logs to stderr in `log_format`, redacted; aiohttp's access lines only at DEBUG."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(log_format=log_format)]
    root.setLevel(level)
    # No line shows the caller's file and line, thread or process: not collecting them
    # spares every record a walk up the stack and three lookups (the logging cookbook's
    # "Optimization"), a third of a line's cost on the message path.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level == "DEBUG" else logging.WARNING
    )
    # aiosqlite's DEBUG lines are every statement with its parameters: rows, not events.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
