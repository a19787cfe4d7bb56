"""Distinct credentials on the running service, and no open API on an exposed address."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.conftest import (
    CONFIG,
    ROOT,
    Database,
    RunningBridge,
    make_settings,
    start_bridge,
    stop_bridge,
)
from tests.fakes import FakeBot, handoff_body
from tests.kit.eventually import eventually

BOT = {"Authorization": "Bearer bot-secret-1"}
ADMIN = {"Authorization": "Bearer admin-secret-2"}
ACME = {"Authorization": "Bearer acme-secret-3"}


@pytest.fixture
async def guarded(database: Database) -> AsyncIterator[RunningBridge]:
    """The real app with a bot token, an admin token and one organization token."""
    settings = make_settings(
        database,
        unused_port(),
        security={
            "api_token": "bot-secret-1",
            "admin_token": "admin-secret-2",
            "org_tokens": {"acme-secret-3": {"organization_id": "acme"}},
        },
    )
    running = await start_bridge(settings)
    try:
        yield running
    finally:
        await stop_bridge(running)


async def test_the_bot_token_hands_off_but_cannot_administer(
    guarded: RunningBridge, bot: FakeBot
) -> None:
    status, created = await guarded.post("/v1/handoffs", handoff_body(bot.url), headers=BOT)
    assert status == 201
    status, _ = await guarded.get(f"/v1/conversations/{created['id']}", headers=BOT)
    assert status == 200
    # Minting a desk link, subscribing to every event or reading deliveries needs the admin.
    for method, path in [
        ("GET", "/v1/agents"),
        ("GET", "/v1/agents/anna/desk_link"),
        ("POST", "/v1/subscriptions"),
        ("GET", "/v1/outbox"),
        ("POST", "/v1/routing/explain"),
    ]:
        async with guarded.http.request(method, guarded.url(path), headers=BOT) as response:
            answer = await response.json()
            assert response.status == 401, (method, path)
            assert answer["error"]["fields"][0]["field"] == "Authorization"


async def test_the_admin_token_administers_but_is_not_a_bot(
    guarded: RunningBridge, bot: FakeBot
) -> None:
    status, _ = await guarded.get("/v1/outbox", headers=ADMIN)
    assert status == 200
    status, agents = await guarded.get("/v1/agents", headers=ADMIN)
    assert status == 200 and isinstance(agents["items"], list)
    status, answer = await guarded.post("/v1/handoffs", handoff_body(bot.url), headers=ADMIN)
    assert status == 401
    assert "BRIDGE_SECURITY__API_TOKEN" in answer["error"]["fields"][0]["problem"]
    status, _ = await guarded.post("/v1/handoffs", handoff_body(bot.url))
    assert status == 401
    # Nothing was stored by the refused calls.
    status, page = await guarded.get("/v1/outbox", headers=ADMIN)
    assert status == 200 and page["items"] == []


async def test_an_organization_token_reaches_its_own_directory_only(
    guarded: RunningBridge,
) -> None:
    status, _ = await guarded.get("/v1/agents", headers=ACME)
    assert status == 200
    status, _ = await guarded.get("/v1/outbox", headers=ACME)
    assert status == 401
    # Health checks stay open for load balancers.
    status, _ = await guarded.get("/healthz")
    assert status == 200


# ---- the command line refuses an open API on an exposed address --------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        BRIDGE_DATABASE__URL=f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _serve(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bridge",
        "serve",
        "--config",
        str(CONFIG),
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]


def test_serving_on_all_addresses_without_tokens_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = subprocess.run(
        _serve(unused_port()),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "BRIDGE_SECURITY__API_TOKEN" in result.stderr
    assert "BRIDGE_SECURITY__ALLOW_OPEN_API" in result.stderr
    assert not (tmp_path / "bridge.db").exists()  # refused before touching the store


async def _wait_ready(port: int, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:

        async def ready() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"the service exited with {process.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, within=30, what="the service to become ready")


@pytest.mark.parametrize(
    "extra",
    [
        {"BRIDGE_SECURITY__ALLOW_OPEN_API": "true"},
        {"BRIDGE_SECURITY__API_TOKEN": "x" * 20, "BRIDGE_SECURITY__ADMIN_TOKEN": "y" * 20},
    ],
    ids=["open-on-purpose", "with-tokens"],
)
async def test_serving_on_all_addresses_starts_when_told_how(
    tmp_path: Path, extra: dict[str, Any]
) -> None:
    env = _env(tmp_path, **extra)
    port = unused_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *_serve(port),
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await _wait_ready(port, process)
        finally:
            process.terminate()
            await process.wait()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    warned = "security.open_api" in output
    assert warned == ("BRIDGE_SECURITY__ALLOW_OPEN_API" in extra), output
