"""The Dockerfile's HEALTHCHECK, run as the image runs it: it asks the port the service was
configured with (BRIDGE_SERVER__PORT), not a fixed one."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import ROOT, RunningBridge
from tests.kit.eventually import WITHIN_SECONDS


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's exec-form command, from the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


async def _check(port: int) -> int:
    """Exit status of the health check in a process whose BRIDGE_SERVER__PORT is `port`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["BRIDGE_SERVER__PORT"] = str(port)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # The image's working directory holds config/, as the repository's root does.
    process = await asyncio.create_subprocess_exec(
        *healthcheck_command(),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), WITHIN_SECONDS)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_healthcheck_follows_the_configured_port(bridge: RunningBridge) -> None:
    port = bridge.settings.server.port
    assert port != 8080
    assert await _check(port) == 0
    # Nothing listens there: the same check reports the container unhealthy.
    assert await _check(unused_port()) != 0
