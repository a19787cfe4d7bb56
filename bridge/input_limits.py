"""Limits on what a client may send, checked before a model or the store ever sees it.

- JSON nested deeper than `MAX_JSON_DEPTH` is refused before it is decoded: `json.loads`
  recurses, and a body of a thousand brackets would end in a RecursionError (a 500).
- `NaN` and infinities are refused: no store column and no JSON client can take them.
- NUL characters and lone UTF-16 surrogates are refused in every string, keys included:
  PostgreSQL cannot keep NUL in text (it fails the whole statement), and a lone surrogate
  cannot be encoded as UTF-8 at all. Refused with the field's path, so the client can tell
  which value to fix; neither can be retried into success.

The checks are pure and used by every parser of client JSON: the API's `parse_body`, the
routers API, and the adapters' `InboundRequest.json()`.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
from typing import Any

from bridge.errors import FieldProblem, MalformedJSON, RequestError

MAX_JSON_DEPTH = 64

# A JSON string, escapes included; possessive, so an unterminated one cannot backtrack.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# An opener counts 2 and a closer 0; minus 1 per bracket, the running sum is the depth.
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in UTF-8 JSON text, found without recursion."""
    openers = raw.count(b"[") + raw.count(b"{")
    if openers <= 1:
        return openers
    # Brackets inside strings do not nest anything. In UTF-8 no byte of a multi-byte
    # character is a quote, a backslash or a bracket, so the bytes can be scanned as is.
    brackets = _STRING.sub(b"", raw).translate(_STEP, _NOT_BRACKET)
    if not brackets:
        return 0
    depth: int = max(map(operator.sub, itertools.accumulate(brackets), itertools.count(1)))
    return depth


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL or a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (not valid Unicode text)"
    return None


def stored_id(text: str) -> int | None:
    """A row id given as text: ASCII digits that fit a 64-bit integer, else None."""
    # str.isdigit() also accepts "²", which int() refuses, and a 30-digit number would
    # reach the store only to be refused there.
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def string_problems(data: Any, limit: int = 5) -> list[FieldProblem]:
    """Strings (and keys) in decoded JSON that cannot be stored, each with its path."""
    problems: list[FieldProblem] = []
    # An explicit stack: depth is bounded already, but a walk need not rely on it.
    pending: list[tuple[str, Any]] = [("", data)]
    while pending and len(problems) < limit:
        path, node = pending.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                problems.append(FieldProblem(path or "(body)", problem))
        elif isinstance(node, dict):
            for key, value in node.items():
                problem = text_problem(key)
                if problem:
                    # The key itself cannot be shown safely: name where it sits.
                    problems.append(FieldProblem(path or "(body)", f"a key {problem}"))
                    continue
                pending.append((_child(path, key), value))
        elif isinstance(node, list):
            pending.extend((_child(path, i), value) for i, value in enumerate(node))
    return problems


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: bytes, error: type[RequestError] = MalformedJSON) -> Any:
    """Decode a JSON body within the limits above; `error` names `(body)` or the bad field."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}",
            [FieldProblem("(body)", "not UTF-8 text")],
        ) from None
    # Fewer openers than the limit cannot nest deeper than it (most bodies): not scanned.
    depth = json_depth(raw) if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH else 0
    if depth > MAX_JSON_DEPTH:
        raise error(
            f"the body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted",
            [FieldProblem("(body)", f"nested deeper than {MAX_JSON_DEPTH} levels")],
        )
    try:
        data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except ValueError as exc:
        raise error(
            f"the body is not valid JSON: {exc}", [FieldProblem("(body)", "not valid JSON")]
        ) from None
    # Valid UTF-8 holds no surrogate, and a raw NUL in a string is invalid JSON (refused
    # above): only a \u escape can make either, so a body without one is not walked.
    problems = string_problems(data) if b"\\u" in raw else []
    if problems:
        raise error("the body holds text that cannot be stored", problems)
    return data
