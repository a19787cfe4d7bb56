"""A real run's log holds none of the secrets it was given or the tokens it handed out.

`python -m bridge serve` runs as a subprocess at DEBUG (access lines on) with known
secrets in its environment; the test makes the requests whose log lines carry them (in
paths, query strings, headers and bodies), stops the process, and greps its whole output:
once in the text format, once in the JSON format (`server.log_format: json`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import yaml

from tests.conftest import CONFIG, Database
from tests.integration.test_restart import BridgeProcess

TOVIE_TOKEN = "tovie-apiurl-" + secrets.token_hex(8)
VIVO_TOKEN = "vivo-path-token-" + secrets.token_hex(8)
KOMMUNICATE_KEY = "km-api-key-" + secrets.token_hex(8)
KOMMUNICATE_WEBHOOK = "km-webhook-" + secrets.token_hex(8)
API_TOKEN = "bot-api-" + secrets.token_hex(12)
ADMIN_TOKEN = "admin-api-" + secrets.token_hex(12)
ORG_TOKEN = "org-token-" + secrets.token_hex(12)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
INTEGRATION_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
CONSOLE_SECRET = "console-key-" + secrets.token_hex(12)
CONFIGURED = [
    API_TOKEN,
    ADMIN_TOKEN,
    ORG_TOKEN,
    WEBHOOK_SECRET,
    INTEGRATION_SECRET,
    CONSOLE_SECRET,
    TOVIE_TOKEN,
    VIVO_TOKEN,
    KOMMUNICATE_KEY,
    KOMMUNICATE_WEBHOOK,
]
# Not configured anywhere: found only by the shape of where they sit.
QUERY_SECRET = "query-" + secrets.token_hex(8)
WRONG_TOKEN = "wrong-url-token-" + secrets.token_hex(8)
STOP_SECONDS = 30
Process = TypeVar("Process", bound=BridgeProcess)

ENVIRONMENT = {
    "BRIDGE_SECURITY__API_TOKEN": API_TOKEN,
    "BRIDGE_SECURITY__ADMIN_TOKEN": ADMIN_TOKEN,
    "BRIDGE_SECURITY__ORG_TOKENS": json.dumps({ORG_TOKEN: {"organization_id": "acme"}}),
    "BRIDGE_SECURITY__WEBHOOK_SECRET": WEBHOOK_SECRET,
    "BRIDGE_SECURITY__INTEGRATION_SECRETS": json.dumps([INTEGRATION_SECRET]),
    "BRIDGE_SECURITY__CONSOLE_SECRET": CONSOLE_SECRET,
    "LOGTEST_TOVIE_TOKEN": TOVIE_TOKEN,
    "LOGTEST_VIVO_TOKEN": VIVO_TOKEN,
    "LOGTEST_KM_KEY": KOMMUNICATE_KEY,
    "LOGTEST_KM_WEBHOOK": KOMMUNICATE_WEBHOOK,
}


class SecretBridge(BridgeProcess):
    """The bridge subprocess with every kind of secret set in its environment."""

    def _env(self) -> dict[str, str]:
        return super()._env() | ENVIRONMENT

    async def stop(self) -> None:
        """SIGTERM and wait, so every line (shutdown included) is written."""
        assert self.process is not None
        self.process.terminate()
        await asyncio.wait_for(self.process.wait(), STOP_SECONDS)


@asynccontextmanager
async def serving(config: Path, database: Database, kind: type[Process]) -> AsyncIterator[Process]:
    """`kind` started on `config` (its output next to it), killed if still running after."""
    async with aiohttp.ClientSession() as http:
        bridge = kind(config, database, config.parent / "bridge.log", http)
        try:
            try:
                await bridge.start()
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{bridge.tail(40)}") from None
            yield bridge
        finally:
            await bridge.close()


def write_config(directory: Path, log_format: str = "text") -> Path:
    """The shipped config at DEBUG, plus a Tovie bot, a VivoChat and a Kommunicate channel."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config.setdefault("server", {})["log_level"] = "DEBUG"
    config["server"]["log_format"] = log_format
    config["channels"]["vivo"] = {
        "platform": "vivochat",
        "options": {"webhook_token": "LOGTEST_VIVO_TOKEN", "channel_id": "vc-1"},
    }
    config["channels"]["km"] = {
        "platform": "kommunicate",
        "options": {
            "api_key": "LOGTEST_KM_KEY",
            "webhook_token": "LOGTEST_KM_WEBHOOK",
            # Never called: no handoff goes to this channel.
            "base_url": "http://127.0.0.1:9",
        },
    }
    config["bots"] = {
        "tovie": {"platform": "tovie", "options": {"api_token": "LOGTEST_TOVIE_TOKEN"}}
    }
    config["agents"] = [{"id": "ana", "name": "Ana"}]
    path = directory / "bridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def exercise(bridge: SecretBridge) -> list[str]:
    """Requests whose log lines carry secrets; returns the tokens the bridge handed out."""
    bot = {"Authorization": f"Bearer {API_TOKEN}"}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    # Tovie's Operator API: the token is a path segment; selectDestination used to answer
    # 500 at INFO and log that path in its error line.
    tovie = f"/bots/tovie/{TOVIE_TOKEN}"
    hook = f"http://127.0.0.1:9/tovie-hook?key={QUERY_SECRET}"
    status, body = await bridge.post(f"{tovie}/setWebhook", {"url": hook})
    assert status == 200, body
    status, body = await bridge.post(
        f"{tovie}/selectDestination", {"userId": "u-1", "destinationId": "mysite"}
    )
    assert status == 200, body
    status, _ = await bridge.get(f"/bots/tovie/{WRONG_TOKEN}/getDestinations")
    assert status == 401

    # The bot-side API, a join link, and the desk link the admin API mints.
    handoff = {
        "bot": {"platform": "webhook", "conversation_id": "c-logs"},
        "customer": {"id": "cust-logs"},
        "callback_url": f"http://127.0.0.1:9/callback?signature={QUERY_SECRET}",
    }
    status, conversation = await bridge.post("/v1/handoffs", handoff, headers=bot)
    assert status == 201, conversation
    join_token = str(conversation["join_url"]).rsplit("/", 1)[1]
    referer = {"Referer": str(conversation["join_url"]), "User-Agent": f"probe {ORG_TOKEN}"}
    status, _ = await bridge.get(f"/console/c/{join_token}", headers=referer)
    assert status == 200
    status, _ = await bridge.get(f"/console/c/{WRONG_TOKEN}")
    assert status == 403
    status, _ = await bridge.post(f"/console/api/{join_token}/join", {"name": "Ana"})
    assert status == 200
    status, _ = await bridge.get(f"/console/api/{join_token}/conversation?x={QUERY_SECRET}")
    assert status == 200
    # No route: the access line carries the path itself, redacted.
    status, _ = await bridge.get(f"/console/api/{join_token}/no-such-thing?x={QUERY_SECRET}")
    assert status == 404
    status, link = await bridge.get("/v1/agents/ana/desk_link", headers=admin)
    assert status == 200, link
    desk_token = str(link["url"]).rsplit("/", 1)[1]
    status, _ = await bridge.get(f"/console/desk/{desk_token}")
    assert status == 200
    status, _ = await bridge.post(f"/console/desk-api/{desk_token}/sign-in")
    assert status == 200
    status, link = await bridge.get("/v1/supervisor_link", headers=admin)
    assert status == 200, link
    supervisor_token = str(link["url"]).rsplit("/", 1)[1]
    status, _ = await bridge.get(f"/console/supervisor/{supervisor_token}")
    assert status == 200
    status, _ = await bridge.get(f"/console/supervisor-api/{supervisor_token}/queue")
    assert status == 200

    # Platform webhooks: right and wrong URL tokens, a secret in a header and in a body.
    status, _ = await bridge.post(f"/webhooks/vivo/{VIVO_TOKEN}", {"not": "vivochat"})
    assert 400 <= status < 500
    status, _ = await bridge.post(f"/webhooks/vivo/{WRONG_TOKEN}", {})
    assert status == 401
    km_auth = {"Authentication": "Basic " + base64.b64encode(KOMMUNICATE_WEBHOOK.encode()).decode()}
    # A message from the bot's own user is dropped, and its key logged at DEBUG.
    dropped = {"key": KOMMUNICATE_KEY, "from": "bot", "groupId": 7, "message": "hi"}
    status, _ = await bridge.post("/webhooks/km", dropped, headers=km_auth)
    assert status == 200
    status, _ = await bridge.post(
        "/integrations/presence",
        {"agent_id": "ana", "presence": "online"},
        headers={"Authorization": f"Bearer {INTEGRATION_SECRET}", "X-Token": WEBHOOK_SECRET},
    )
    assert status in {400, 401}
    return [join_token, desk_token, supervisor_token]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_secret_reaches_the_log(database: Database, tmp_path: Path) -> None:
    """Every secret set, every token handed out and every query string stays out of the log."""
    async with serving(write_config(tmp_path), database, SecretBridge) as bridge:
        handed_out = await exercise(bridge)
        await bridge.stop()
    log = bridge.log_path.read_text(encoding="utf-8", errors="replace")
    given = [*CONFIGURED, QUERY_SECRET, WRONG_TOKEN, *handed_out]
    leaked = [value for value in given if value in log]
    assert leaked == [], f"secrets in the log: {leaked}\n{bridge.tail(60)}"
    # The lines that would carry them were written (redacted), so the check is not vacuous.
    assert "tovie.destination_selected" in log
    assert "kommunicate.dropped event=[redacted]" in log
    # Access lines name the route, never the token in the path; without a route, the path
    # is there, redacted.
    assert "route=/console/c/{token}" in log
    assert "route=/console/desk-api/{token}/sign-in" in log
    assert "route=/console/supervisor-api/{token}/queue" in log
    assert "route=/bots/{bot}/{path}" in log
    assert "path=/console/api/[redacted]/no-such-thing" in log
    assert "/integrations/presence" in log
    assert "Traceback" not in log, bridge.tail(60)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_secret_reaches_the_json_log(database: Database, tmp_path: Path) -> None:
    """The same run with `server.log_format: json`: every line an object, none with a secret."""
    async with serving(write_config(tmp_path, "json"), database, SecretBridge) as bridge:
        handed_out = await exercise(bridge)
        await bridge.stop()
    log = bridge.log_path.read_text(encoding="utf-8", errors="replace")
    given = [*CONFIGURED, QUERY_SECRET, WRONG_TOKEN, *handed_out]
    leaked = [value for value in given if value in log]
    assert leaked == [], f"secrets in the log: {leaked}\n{bridge.tail(60)}"
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    others = [line for line in log.splitlines() if line and not line.startswith("{")]
    # Not log lines: the test's run marker and the serve command's greeting on stdout.
    assert all(line.startswith(("=====", "handoff bridge", "open ")) for line in others), others
    events = {record["event"] for record in records}
    assert {"tovie.destination_selected", "kommunicate.dropped", "http.access"} <= events
    dropped = next(r for r in records if r["event"] == "kommunicate.dropped")
    assert dropped["extra.event"] == "[redacted]"
    access = [r for r in records if r["event"] == "http.access"]
    unmatched = [r["path"] for r in access if r["route"] is None]
    assert all("[redacted]" in path or "/v1/" in path for path in unmatched), unmatched
    routes = {r["route"] for r in access}
    assert "/console/c/{token}" in routes
    assert "/bots/{bot}/{path}" in routes
    assert all(len(r["request_id"]) == 32 and len(r["trace_id"]) == 32 for r in access)
    assert "/console/api/[redacted]/no-such-thing" in unmatched
    assert "Traceback" not in log, bridge.tail(60)
