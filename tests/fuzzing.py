"""Hypothesis strategies for HTTP requests to every route an aiohttp app serves.

The routes come from the app's router (`served_routes`), so nothing lists them by hand.
What makes a request get past lookups and credentials is the app's own knowledge, given
as an `Aim`: existing values for path parameters, a valid body per route, and the
credentials a route wants. Most requests use them with a few values made hostile; the
rest are hostile throughout. Requests are sent with `http.client` on purpose: it sends
the bytes it is given (a header that is not UTF-8, a body that is not JSON).
"""

from __future__ import annotations

import copy
import http.client
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from hypothesis import strategies as st

BODY_METHODS = {"POST", "PUT", "PATCH", "*"}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
]
NASTY = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "²",
    "١٢",
    "-1",
    "0",
    "9" * 25,
    "NaN",
    "..",
    "%",
    "ü",
    "\u202e",
    "null",
]
# Stands for deep nesting in a document until it is written out as text (json.dumps
# itself would recurse on a deeply nested document).
DEEP = "\x01deep\x01"


@dataclass(frozen=True)
class Route:
    """One method and path template the app serves."""

    method: str
    template: str

    @property
    def params(self) -> list[str]:
        """The path parameters, in the order they appear."""
        return re.findall(r"{(\w+)", self.template)


def served_routes(app: web.Application) -> list[Route]:
    """Every route of the app, read from its router (static files get a `{filename}`)."""
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        template = resource.canonical
        if isinstance(resource, web.StaticResource):
            template += "/{filename}"
        routes.add(Route(route.method, template))
    return sorted(routes, key=lambda r: (r.template, r.method))


@dataclass(frozen=True)
class FuzzRequest:
    """One request as sent on the wire."""

    method: str
    target: str
    headers: tuple[tuple[str, bytes], ...]
    body: bytes

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 600 else self.body[:600] + b"...(truncated)"
        return f"{self.method} {self.target}\n  headers={list(self.headers)}\n  body={body!r}"


@dataclass(frozen=True)
class Aim:
    """What the app under test knows, so that requests get past lookups and credentials."""

    # Existing values for a path parameter, given the ones drawn before it.
    values: Callable[[Route, str, dict[str, str]], list[str]]
    # Valid bodies for a route with these path parameters.
    templates: Callable[[Route, dict[str, str]], list[Any]]
    # The headers that authenticate this request.
    credentials: Callable[[Route, dict[str, str], bytes], dict[str, str]]
    query_names: tuple[str, ...] = ()


texts = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(exclude_categories=()), max_size=30),  # surrogates included
    st.sampled_from(NASTY),
    st.integers(60, 3000).map(lambda n: "k" * n),
    # Just over the lengths of the store's columns and of a message.
    st.sampled_from([37, 65, 129, 257, 321, 10_001]).map(lambda n: "k" * n),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)


def _slots(document: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, breadth first."""
    slots: list[tuple[Any, Any]] = []
    pending = [document]
    while pending:
        node = pending.pop(0)
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            slots.append((node, key))
            if isinstance(node[key], dict | list):
                pending.append(node[key])
    return slots


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """A valid body with a few values replaced, dropped, repeated or buried deep."""
    document = copy.deepcopy(template)
    for _ in range(draw(st.integers(0, 3))):
        slots = _slots(document) if isinstance(document, dict | list) else []
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["value", "value", "drop", "deep", "repeat", "extra"]))
        if action == "drop" and isinstance(container, dict):
            del container[key]
        elif action == "repeat" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))  # the same item twice
        elif action == "repeat":
            container[key] = [container[key], container[key]]  # a list where one was
        elif action == "deep":
            container[key] = DEEP
        elif action == "extra" and isinstance(container, dict):
            container[draw(texts)] = draw(json_values)
        else:
            container[key] = draw(json_values)
    return document


@st.composite
def bodies(draw: st.DrawFn, templates: list[Any]) -> bytes:
    """Bytes of a body: mostly JSON near a valid one, sometimes anything at all."""
    kind = draw(st.sampled_from(["template"] * 5 + ["random", "deep", "raw", "empty"]))
    if kind == "empty":
        return b""
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(30, 5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "random" or not templates:
        document = draw(json_values)
    else:
        document = draw(mutated(draw(st.sampled_from(templates))))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    depth = draw(st.integers(10, 3000))
    text = text.replace(json.dumps(DEEP), "[" * depth + "0" + "]" * depth)
    return text.encode("utf-8", "surrogatepass")


def _encode(value: str, safe: str = "") -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe=safe)


def _legal_header(value: bytes) -> bool:
    # Control bytes HTTP cannot carry in a header value: the server's parser refuses them.
    return not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value) and value.strip() == value


def requests(routes: list[Route], aim: Aim) -> st.SearchStrategy[FuzzRequest]:
    """Requests to the routes, each aimed past lookups and credentials most of the time."""
    # Routes that take a body are where most input goes: they are drawn three times as often.
    weighted = [r for r in routes for _ in range(3 if r.method in BODY_METHODS else 1)]

    @st.composite
    def build(draw: st.DrawFn) -> FuzzRequest:
        route = draw(st.sampled_from(weighted))
        method = route.method
        if method == "*":
            method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
        values: dict[str, str] = {}
        for name in route.params:
            real = aim.values(route, name, values)
            use_real = real and draw(st.integers(0, 4)) > 0
            values[name] = draw(st.sampled_from(real)) if use_real else draw(texts)
        path = route.template
        for name, value in values.items():
            segment = _encode(value, "/" if name == "path" else "")
            path = re.sub(r"\{" + name + r"(:[^}]*)?\}", lambda _, s=segment: s, path)
        names = st.sampled_from(aim.query_names) | texts if aim.query_names else texts
        query = draw(st.dictionaries(names, texts, max_size=3))
        if query:
            path += "?" + "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query.items())
        body = draw(bodies(aim.templates(route, values)))
        headers = {"Content-Type": draw(st.sampled_from(["application/json"] * 6 + CONTENT_TYPES))}
        if draw(st.integers(0, 5)) > 0:
            headers.update(aim.credentials(route, values, body))
        # One value per header name, whatever its case.
        wire = {k.title(): v.encode("latin-1", "replace") for k, v in headers.items()}
        if draw(st.integers(0, 9)) == 0:
            name = draw(st.sampled_from(["Authorization", "Content-Type", "Last-Event-ID"]))
            wire[name] = draw(st.binary(min_size=1, max_size=40).filter(_legal_header))
        return FuzzRequest(method, path, tuple(wire.items()), body)

    return build()


def send(port: int, request: FuzzRequest) -> tuple[int, bytes]:
    """Send one request to 127.0.0.1:`port`; the status and the body (not a live stream's)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in request.headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body)
        response = connection.getresponse()
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            return response.status, b"(a live event stream)"
        return response.status, response.read()
    finally:
        connection.close()
