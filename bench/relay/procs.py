"""The benchmark's subprocesses: start, wait until ready, read CPU and RSS, stop.

CPU time and RSS come from /proc (Linux), so no dependency is needed: utime + stime of
every thread of the process, and VmRSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.relay.client import ClientFailure, Connection, encode_request

ROOT = Path(__file__).resolve().parents[2]
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
STOP_SECONDS = 15.0


class StartFailed(Exception):
    """A subprocess exited or never answered its readiness check."""


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; a race is possible but rare)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; fields are counted after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


@dataclass
class Proc:
    """A running subprocess that serves HTTP on a loopback port."""

    role: str
    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        """RSS in MB now."""
        return rss_mb(self.pid)

    def tail(self, lines: int = 30) -> str:
        """The end of its log, for a failure report."""
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    async def request_json(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """A control request (not part of any measurement); the answer's status and JSON."""
        data = b"" if body is None else json.dumps(body).encode()
        connection = Connection(self.port)
        try:
            response = await connection.send(
                encode_request(method, path, self.port, data, headers or {})
            )
        finally:
            await connection.close()
        try:
            return response.status, json.loads(response.body) if response.body else None
        except ValueError:
            return response.status, None

    async def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it lingers."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def start(
    role: str,
    argv: Sequence[str],
    *,
    port: int,
    log_path: Path,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready_seconds: float = 60.0,
) -> Proc:
    """Start `python argv…` and return once GET `ready_path` answers 200."""
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    environment["PYTHONUNBUFFERED"] = "1"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            cwd=str(cwd or ROOT),
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc = Proc(role, process, port, log_path)
    deadline = time.monotonic() + ready_seconds
    while True:
        if process.returncode is not None:
            raise StartFailed(f"{role} exited with {process.returncode}:\n{proc.tail()}")
        try:
            status, _ = await proc.request_json("GET", ready_path)
            if status == 200:
                return proc
        except ClientFailure:
            pass  # not listening yet
        if time.monotonic() > deadline:
            await proc.stop()
            raise StartFailed(f"{role} not ready after {ready_seconds:g} s:\n{proc.tail()}")
        await asyncio.sleep(0.1)


async def start_server(kind: str, directory: Path, forward: str | None = None) -> Proc:
    """One of bench/relay/servers.py's servers on a fresh port."""
    port = free_port()
    argv = ["-m", "bench.relay.servers", kind, "--port", str(port)]
    if forward:
        argv += ["--forward", forward]
    return await start(
        kind, argv, port=port, log_path=directory / f"{kind}.log", ready_path="/healthz"
    )
