"""Shared fixtures: database backends (SQLite file, real PostgreSQL), the app, a fake bot."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import TestServer, unused_port

from bridge.app import create_app
from bridge.settings import Settings, load_settings
from bridge.settings.loader import deep_merge
from tests.fakes import WEBHOOK_SECRET, FakeBot
from tests.kit.eventually import WITHIN_SECONDS, eventually

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "bridge.yaml"
PG_DSN = os.environ.get("BRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
CONSOLE_SECRET = "test-console-secret"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the PostgreSQL runs, so `-m "not postgres"` leaves them out."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database") == "postgres":
            item.add_marker(pytest.mark.postgres)


def need_service(reason: str) -> None:
    """Skip locally with a visible reason; under CI=true a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: services must be available)")
    pytest.skip(reason)


async def _pg_available() -> str | None:
    try:
        connection = await asyncpg.connect(PG_DSN, timeout=3)
    except Exception as exc:
        return f"PostgreSQL at {PG_DSN} is not reachable: {exc}"
    await connection.close()
    return None


@dataclass
class Database:
    """Settings for one backend, and how to inspect it."""

    backend: str
    url: str
    pg_schema: str | None = None

    def settings(self) -> dict[str, Any]:
        database: dict[str, Any] = {"url": self.url}
        if self.pg_schema:
            database["pg_schema"] = self.pg_schema
        return database


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Each integration test runs on a SQLite file and on the real PostgreSQL (own schema)."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
        return
    problem = await _pg_available()
    if problem:
        need_service(problem)
    schema = "t_" + uuid.uuid4().hex[:12]
    url = PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield Database("postgres", url, schema)
    finally:
        connection = await asyncpg.connect(PG_DSN)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()


# The shipped config's demo agent and team, left out of make_settings: each test sets up
# the agents it needs, and most exercise a chat offered to nobody.
WITHOUT_DEMO: dict[str, Any] = {
    "agents": [],
    "teams": [],
    "channels": {"mysite": {"team_id": None}},
}


def make_settings(
    database: Database, port: int, *, demo: bool = False, **overrides: Any
) -> Settings:
    """The shipped default config (without its demo agent unless `demo`), on this database,
    with a quick relay for tests."""
    base: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port},
        "database": database.settings(),
        "relay": {
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            "poll_interval_seconds": 0.05,
            "request_timeout_seconds": 5,
            "quick_retries": 0,
            "max_attempts": 5,
        },
        # Bots hear of queue positions at most this often: quick, to keep tests short.
        "queue": {"update_seconds": 0.2},
        "security": {"webhook_secret": WEBHOOK_SECRET, "console_secret": CONSOLE_SECRET},
    }
    if not demo:
        base = deep_merge(base, WITHOUT_DEMO)
    return load_settings(CONFIG, **deep_merge(base, overrides))


@dataclass
class RunningBridge:
    """The real app, listening on a real port, with an HTTP client pointed at it."""

    server: TestServer
    http: ClientSession
    settings: Settings

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.post(self.url(path), json=body, **kwargs) as response:
            return response.status, await _json_or_text(response)

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.get(self.url(path), **kwargs) as response:
            return response.status, await _json_or_text(response)

    async def get_until(
        self, path: str, holds: Callable[[Any], Any], within: float = WITHIN_SECONDS
    ) -> Any:
        """GET `path` until it answers 200 and `holds(body)`; fail with the last answer."""
        _, body = await eventually(
            lambda: self.get(path),
            lambda answer: answer[0] == 200 and holds(answer[1]),
            within=within,
            what=path,
        )
        return body


async def _json_or_text(response: Any) -> Any:
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()


async def start_bridge(
    settings: Settings, *, resolver: AbstractResolver | None = None
) -> RunningBridge:
    """Start the app on settings.server.port; the caller stops it with stop_bridge."""
    app = create_app(settings, resolver=resolver)
    # Served as `python -m bridge serve` serves it: the bridge's own access line only.
    server = TestServer(app, host="127.0.0.1", port=settings.server.port, access_log=None)
    await server.start_server()
    return RunningBridge(server, ClientSession(), settings)


async def stop_bridge(bridge: RunningBridge) -> None:
    """Stop the app as a deployment would (graceful shutdown)."""
    await bridge.http.close()
    await bridge.server.close()


@pytest.fixture
async def bot() -> AsyncIterator[FakeBot]:
    """A fake bot callback server that verifies every signature."""
    async with FakeBot() as fake:
        yield fake


@pytest.fixture
def bridge_settings(database: Database) -> Settings:
    """Settings for one test's bridge."""
    return make_settings(database, unused_port())


@pytest.fixture
async def bridge(bridge_settings: Settings) -> AsyncIterator[RunningBridge]:
    """The real bridge app on a real port."""
    running = await start_bridge(bridge_settings)
    try:
        yield running
    finally:
        await stop_bridge(running)
