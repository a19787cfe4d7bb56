"""A lean HTTP/1.1 keep-alive client for the load generator, on asyncio streams.

Why not aiohttp's client: on this machine it spends two to three times the CPU per
request of this one, and at c=64 against a bare aiohttp app it is the bottleneck, which
would flatter every ratio to the anchors. This client writes one prepared request and reads
one response at a time per connection (Content-Length or chunked bodies; no redirects,
no TLS, no cookies): enough for loopback servers we start ourselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

# Long enough for the slowest handoff seen on PostgreSQL (p99 ≈ 7.5 s) several times over,
# short enough that a hung server ends a phase instead of the run.
REQUEST_TIMEOUT_SECONDS = 60.0


class ClientFailure(Exception):
    """A request got no complete HTTP response (refused, reset, timed out, malformed)."""


@dataclass(frozen=True, slots=True)
class Response:
    """A response's status and body."""

    status: int
    body: bytes


def encode_request(
    method: str, path: str, port: int, body: bytes = b"", headers: Mapping[str, str] = {}
) -> bytes:
    """The request's bytes, ready to write on a keep-alive connection."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection to a loopback port; reopened after a failure or a close."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> Response:
        """Send prepared bytes (see `encode_request`) and read the whole response."""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(
                        "127.0.0.1", self.port
                    )
                assert self._reader is not None
                self._writer.write(request)
                response, keep = await _read_response(self._reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise ClientFailure(type(exc).__name__) from exc
        if not keep:
            await self.close()
        return response

    async def close(self) -> None:
        """Close the socket, if open; the next `send` opens a new one."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass  # the peer reset it first: closed either way


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """One response and whether the connection may be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = False
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = value != b"close"
    if chunked:
        body = await _read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(length)
    elif status in (204, 304) or status < 200:
        body = b""
    else:
        # No framing: the body runs to the end of the connection.
        body, keep = await reader.read(), False
    return Response(status, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers: none expected, skipped
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
