"""`python -m bench.relay [--quick | --smoke] [--only PART]… [--concurrency N] [--json]`.

Starts a fake platform and bot (the receiver), the two anchors and the real service as
subprocesses on loopback, loads them from this process, and prints the figures; see
bench/README.md. It never fails on speed: it prints figures, it asserts none.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.relay.figures import AnchorFigures, BridgeFigures
from bench.relay.phases import FULL, QUICK, SMOKE, Scale, say
from bench.relay.procs import ROOT, start_server
from bench.relay.report import as_json, render
from bench.relay.scenario import measure_anchors, measure_bridge
from bench.relay.service import PG_DSN, postgres_version

PARTS = ("anchors", "sqlite", "postgres", "replicas")
# (part, database, processes)
CONFIGURATIONS = (("sqlite", "sqlite", 1), ("postgres", "postgres", 1), ("replicas", "postgres", 2))
# A 1-minute load average above this before the start means other work shared the cores.
BUSY_LOAD = 0.5


def _commit() -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def conditions(scale: Scale, concurrency: int, postgres: str | None) -> dict[str, Any]:
    """The run's conditions, printed above the figures."""
    mode = {
        "full": "full",
        "quick": "quick: smaller counts and shorter loads than the full run, noisier figures",
        "smoke": "smoke: a check that every phase runs, figures meaningless",
    }[scale.name]
    soak = f"a soak to {scale.soak_messages:,} messages" if scale.soak_messages else "no soak"
    host = PG_DSN.rsplit("@", 1)[-1]
    return {
        "benchmark": f"python -m bench.relay, mode {mode}",
        "machine": (
            f"{os.cpu_count()} cores, {platform.platform()}, Python {sys.version.split()[0]}"
        ),
        "commit": _commit(),
        "load": (
            f"c={concurrency} keep-alive connections from one load-generator process;"
            f" {scale.seconds:g} s per timed load; JSON bodies of about 1 KB"
        ),
        "counts": (
            f"{scale.waiting:,} conversations waiting for the second handoff measurement"
            f" (seeding stops after {scale.seed_seconds:g} s); {scale.conversations} conversations"
            f" per message direction; at most {scale.max_messages:,} messages per delivery load;"
            f" arrivals awaited {scale.drain_seconds:g} s after the last answer; {soak}"
        ),
        "platforms": (
            "customer→platform: the Kommunicate adapter posting to a fake Kommunicate API;"
            " agent→bot: the built-in console's POST /console/api/{token}/messages, delivered"
            " to the handoff's callback_url on a fake bot; both fakes answer at once"
        ),
        "service": (
            "python -m bridge serve with config/bridge.yaml (default relay settings, SQLite"
            " synchronous=FULL, log level INFO) plus one Kommunicate channel"
        ),
        "postgresql": f"{postgres} at {host}" if postgres else f"not reachable at {host}",
    }


async def run(
    parts: Sequence[str], scale: Scale, concurrency: int
) -> tuple[dict[str, Any], AnchorFigures | None, list[BridgeFigures]]:
    """Measure the anchors and the selected configurations; return every figure."""
    started, load_before = time.monotonic(), os.getloadavg()[0]
    postgres = await postgres_version()
    facts = conditions(scale, concurrency, postgres)
    bridges: list[BridgeFigures] = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as temporary:
        directory = Path(temporary)
        receiver = await start_server("receiver", directory)
        try:
            say("anchors: bare aiohttp app, then the non-durable relay")
            anchors = await measure_anchors(receiver, directory, scale, concurrency)
            for part, kind, processes in CONFIGURATIONS:
                if part not in parts:
                    continue
                if kind == "postgres" and postgres is None:
                    label = f"PostgreSQL, {processes} process{'es' if processes > 1 else ''}"
                    error = f"PostgreSQL not reachable at {PG_DSN.rsplit('@', 1)[-1]}"
                    bridges.append(BridgeFigures(label, kind, processes, error=error))
                    continue
                place = directory / part
                place.mkdir()
                bridges.append(
                    await measure_bridge(
                        kind,
                        processes,
                        receiver,
                        place,
                        scale,
                        concurrency,
                        anchors.relay.delivered_rate,
                    )
                )
        finally:
            await receiver.stop()
    load_after = os.getloadavg()[0]
    busy = (
        "; other processes were running (the load average before the start was above"
        f" {BUSY_LOAD}): rerun on a quiet machine for figures to compare"
        if load_before > BUSY_LOAD
        else ""
    )
    facts["load average"] = f"{load_before:.2f} before, {load_after:.2f} after{busy}"
    facts["duration"] = f"{time.monotonic() - started:.0f} s"
    return facts, anchors, bridges


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; always exits 0 once the figures are printed."""
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="under 2 minutes, smaller counts")
    size.add_argument("--smoke", action="store_true", help="a few seconds: every phase runs once")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (repeatable); the anchors always run, every ratio needs them",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="load workers (default 64)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    scale = SMOKE if args.smoke else QUICK if args.quick else FULL
    facts, anchors, bridges = asyncio.run(run(args.only or PARTS, scale, max(1, args.concurrency)))
    print(render(facts, anchors, bridges))
    if args.json:
        print(as_json(facts, anchors, bridges))
    return 0


if __name__ == "__main__":
    sys.exit(main())
