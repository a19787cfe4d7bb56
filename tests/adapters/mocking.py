"""aioresponses made to fit the installed aiohttp, shared by the adapter tests.

aioresponses 0.7.9 builds `ClientResponse` objects without the `stream_writer` that
aiohttp 3.14 requires; these subclasses supply a stub, so canned answers work the same
on older and newer aiohttp.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiohttp import ClientResponse
from aioresponses import aioresponses


class CompatResponse(ClientResponse):
    """A ClientResponse that aioresponses can build on aiohttp 3.14."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class CompatAioresponses(aioresponses):
    """aioresponses whose canned answers use CompatResponse."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", CompatResponse)
        super().add(*args, **kwargs)
