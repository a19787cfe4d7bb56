"""A DNS resolver that answers from a table, for tests of the outbound URL policy."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter

from aiohttp.abc import AbstractResolver, ResolveResult


class TableResolver(AbstractResolver):
    """Answers each name from a table: a list of answers, one per lookup, the last repeated.

    A name that is not in the table does not resolve (socket.gaierror); one in `hanging`
    never answers. `lookups` counts the lookups of each name.
    """

    def __init__(self, table: dict[str, list[list[str]]], hanging: set[str] | None = None):
        self.table = table
        self.hanging = hanging or set()
        self.lookups: Counter[str] = Counter()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The next answer for `host`."""
        self.lookups[host] += 1
        if host in self.hanging:
            await asyncio.Event().wait()
        answers = self.table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers[min(self.lookups[host], len(answers)) - 1]
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6
                if ipaddress.ip_address(address).version == 6
                else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in answer
        ]

    async def close(self) -> None:
        """Nothing to release."""
