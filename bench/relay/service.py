"""The real service under load: its config, its database, and `python -m bridge serve`.

The config is the shipped `config/bridge.yaml` (console channels, default relay settings)
plus one Kommunicate channel, `kommunicate`, whose API is the receiver's fake. Each run
gets a fresh SQLite file or a fresh PostgreSQL schema, dropped at the end.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from bench.relay.procs import ROOT, Proc, free_port, start
from bench.relay.servers import KOMMUNICATE_PREFIX

PG_DSN = os.environ.get(
    "BENCH_PG_DSN",
    os.environ.get("BRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
)
KOMMUNICATE_CHANNEL = "kommunicate"


def agent_region(index: int) -> str:
    """The region code of the index-th agent conversation's console channel."""
    return f"agent{index}"


API_KEY_VARIABLE = "BENCH_KOMMUNICATE_API_KEY"
WEBHOOK_TOKEN_VARIABLE = "BENCH_KOMMUNICATE_WEBHOOK_TOKEN"


@dataclass(frozen=True)
class Secrets:
    """The bridge's secrets for one run, the same for every replica."""

    api_token: str
    admin_token: str
    webhook_secret: str
    console_secret: str

    @classmethod
    def fresh(cls) -> Secrets:
        """New random secrets."""
        return cls(
            api_token=secrets.token_urlsafe(24),
            admin_token=secrets.token_urlsafe(24),
            webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            console_secret=secrets.token_urlsafe(24),
        )


@dataclass(frozen=True)
class Database:
    """Where one run keeps its data."""

    kind: str  # "sqlite" or "postgres"
    url: str
    pg_schema: str | None = None


async def postgres_version(dsn: str = PG_DSN) -> str | None:
    """The server's version when PostgreSQL answers at `dsn`, else None."""
    try:
        connection = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


@asynccontextmanager
async def database(kind: str, directory: Path) -> AsyncIterator[Database]:
    """A fresh SQLite file, or a fresh PostgreSQL schema dropped on exit."""
    if kind == "sqlite":
        yield Database(kind, f"sqlite+aiosqlite:///{directory / 'bridge.db'}")
        return
    schema = f"bench_relay_{os.getpid()}_{int(time.time())}"
    connection = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        # Created here, before any replica starts, so replicas never race to create it.
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        url = "postgresql+asyncpg://" + PG_DSN.split("://", 1)[1]
        yield Database(kind, url, schema)
    finally:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


def write_config(directory: Path, receiver_port: int, agent_channels: int) -> Path:
    """The shipped config plus the Kommunicate channel and the agents' channels, for the run.

    Each agent conversation gets a console region channel of its own: joining chats that
    wait in one queue moves everyone behind them and queues a `queue.updated` for each,
    a cost (quadratic in the queue's length) that belongs to the take, not to relaying
    messages, and that would leave a backlog in front of the message phases.
    """
    config: dict[str, Any] = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text())
    main = config["channels"][config["default_channel"]]
    # Without the demo agent and its team: a chat offered to an agent who is not online
    # adds a handoff.waiting event, which the figures this bench compares were made without.
    config.pop("agents", None)
    config.pop("teams", None)
    main.pop("team_id", None)
    for index in range(agent_channels):
        main.setdefault("regions", {})[agent_region(index)] = f"agents-{index}"
        config["channels"][f"agents-{index}"] = {"platform": "console"}
    config["channels"][KOMMUNICATE_CHANNEL] = {
        "platform": "kommunicate",
        "options": {
            "api_key": API_KEY_VARIABLE,
            "webhook_token": WEBHOOK_TOKEN_VARIABLE,
            "base_url": f"http://127.0.0.1:{receiver_port}{KOMMUNICATE_PREFIX}",
        },
    }
    path = directory / "bridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _env(db: Database, keys: Secrets) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        BRIDGE_DATABASE__URL=db.url,
        BRIDGE_SECURITY__API_TOKEN=keys.api_token,
        BRIDGE_SECURITY__ADMIN_TOKEN=keys.admin_token,
        BRIDGE_SECURITY__WEBHOOK_SECRET=keys.webhook_secret,
        BRIDGE_SECURITY__CONSOLE_SECRET=keys.console_secret,
        **{API_KEY_VARIABLE: secrets.token_hex(8), WEBHOOK_TOKEN_VARIABLE: secrets.token_hex(8)},
    )
    if db.pg_schema:
        env["BRIDGE_DATABASE__PG_SCHEMA"] = db.pg_schema
    return env


async def start_bridges(
    db: Database,
    count: int,
    directory: Path,
    receiver_port: int,
    keys: Secrets,
    agent_channels: int,
) -> list[Proc]:
    """`count` replicas of the service on one database, started one after the other."""
    config = write_config(directory, receiver_port, agent_channels)
    env = _env(db, keys)
    bridges: list[Proc] = []
    try:
        for replica in range(count):
            port = free_port()
            # One after the other: the first applies the migrations; the benchmark
            # measures serving, not a start race.
            bridges.append(
                await start(
                    f"bridge-{replica + 1}",
                    ["-m", "bridge", "serve", "--config", str(config), "--port", str(port)],
                    port=port,
                    log_path=directory / f"bridge-{replica + 1}.log",
                    ready_path="/readyz",
                    env=env,
                    cwd=directory,
                )
            )
    except BaseException:
        for bridge in bridges:
            await bridge.stop()
        raise
    return bridges
