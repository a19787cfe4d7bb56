"""`GET /metrics` on the real app: who may scrape, and what a scrape shows after real traffic.

Counters are the process's (several apps run in one test process), so tests compare a
scrape before and after what they do; gauges are the store's state at the scrape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Database, RunningBridge, make_settings, start_bridge, stop_bridge
from tests.fakes import FakeBot, handoff_body
from tests.kit.eventually import eventually

ADMIN = {"Authorization": "Bearer admin-metrics-1"}
SCRAPER = {"Authorization": "Bearer scraper-metrics-2"}
BOT = {"Authorization": "Bearer bot-metrics-3"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def brief(samples: Samples) -> dict[str, float]:
    """The bridge's own samples without buckets, for a failed wait's message."""
    return {
        f"{name}{dict(labels)}": sample
        for (name, labels), sample in samples.items()
        if name.startswith("bridge_") and not name.endswith(("_bucket", "_created"))
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _guarded(database: Database, **overrides: Any) -> RunningBridge:
    security = {
        "admin_token": "admin-metrics-1",
        "metrics_token": "scraper-metrics-2",
        "api_token": "bot-metrics-3",
    }
    agents = [{"id": "ana-metrics", "name": "Ana"}]
    settings = make_settings(database, unused_port(), security=security, agents=agents, **overrides)
    return await start_bridge(settings)


@pytest.fixture
async def guarded(database: Database) -> AsyncIterator[RunningBridge]:
    """The app with an admin token, a scrape token and a bot token."""
    running = await _guarded(database)
    try:
        yield running
    finally:
        await stop_bridge(running)


async def scrape(bridge: RunningBridge) -> Samples:
    status, text = await bridge.get("/metrics", headers=SCRAPER)
    assert status == 200, text
    return parse(text)


async def test_only_the_scrape_token_or_the_admin_may_scrape(guarded: RunningBridge) -> None:
    """No token, a wrong one or the bot's: 401 naming the header; the two right ones: 200."""
    for headers in [{}, BOT, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}]:
        status, body = await guarded.get("/metrics", headers=headers)
        assert status == 401, body
        assert body["error"]["fields"][0]["field"] == "Authorization"
    for headers in [SCRAPER, ADMIN]:
        async with guarded.http.get(guarded.url("/metrics"), headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            assert "bridge_outbox_pending" in await response.text()


async def test_openmetrics_is_answered_when_asked_for(guarded: RunningBridge) -> None:
    """A scraper asking for OpenMetrics gets one document with one # EOF."""
    headers = SCRAPER | {"Accept": "application/openmetrics-text; version=1.0.0"}
    async with guarded.http.get(guarded.url("/metrics"), headers=headers) as response:
        assert response.status == 200
        assert response.content_type == "application/openmetrics-text"
        text = await response.text()
    assert text.count("# EOF") == 1
    assert text.endswith("# EOF\n")
    assert "bridge_queue_length" in text


async def test_public_metrics_need_no_token_and_disabled_ones_are_not_there(
    database: Database,
) -> None:
    """`metrics.public: true` opens /metrics alone; `metrics.enabled: false` removes it."""
    public = await _guarded(database, metrics={"public": True})
    try:
        status, _ = await public.get("/metrics")
        assert status == 200
        status, _ = await public.get("/v1/outbox")
        assert status == 401  # the admin API stays closed
    finally:
        await stop_bridge(public)
    disabled = await _guarded(database, metrics={"enabled": False})
    try:
        status, _ = await disabled.get("/metrics", headers=ADMIN)
        assert status == 404
    finally:
        await stop_bridge(disabled)


async def test_traffic_shows_in_counters_and_the_store_in_gauges(
    guarded: RunningBridge, bot: FakeBot
) -> None:
    """Requests by route template, deliveries and their lag, the queue, the outbox, agents."""
    before = await scrape(guarded)
    status, created = await guarded.post("/v1/handoffs", handoff_body(bot.url), headers=BOT)
    assert status == 201
    conversation_id = created["id"]
    status, _ = await guarded.get(f"/v1/conversations/{conversation_id}", headers=BOT)
    assert status == 200
    status, _ = await guarded.get("/v1/conversations/nope/and/more", headers=BOT)
    assert status == 404
    token = str(created["join_url"]).rsplit("/", 1)[1]
    await bot.wait_for(lambda fake: fake.other_events)  # its place in the queue
    after = await eventually(
        lambda: scrape(guarded),
        lambda samples: (
            value(samples, "bridge_deliveries_total", kind="bot.event", outcome="delivered")
            > value(before, "bridge_deliveries_total", kind="bot.event", outcome="delivered")
        ),
        what="a delivered bot event in the metrics",
        show=brief,
    )
    requests = "bridge_http_requests_total"
    posted = value(after, requests, method="POST", route="/v1/handoffs", status="201")
    assert posted == value(before, requests, method="POST", route="/v1/handoffs", status="201") + 1
    read = {"method": "GET", "route": "/v1/conversations/{conversation_id}", "status": "200"}
    assert value(after, requests, **read) == value(before, requests, **read) + 1
    assert value(after, requests, method="GET", route="(unmatched)", status="404") >= 1
    # Never a raw path in a label: ids and tokens ride in paths.
    labels = " ".join(f"{k}={v}" for _, pairs in after for k, v in pairs)
    assert conversation_id not in labels
    assert token not in labels
    assert "nope" not in labels
    duration = "bridge_http_request_duration_seconds_count"
    assert value(after, duration, method="POST", route="/v1/handoffs") >= posted

    lag = "bridge_delivery_lag_seconds_count"
    assert value(after, lag, kind="bot.event") > value(before, lag, kind="bot.event")
    # The store at the scrape: the chat waits on its region's channel, nothing is due.
    channel = created["channel"]
    assert value(after, "bridge_conversations", status="pending", channel=channel) == 1
    assert value(after, "bridge_queue_length", channel=channel) == 1
    assert value(after, "bridge_queue_oldest_wait_seconds", channel=channel) >= 0
    assert ("bridge_outbox_oldest_due_seconds", frozenset()) in after
    assert value(after, "bridge_outbox_dead") == 0
    agents = [sample for (name, _), sample in after.items() if name == "bridge_agents"]
    assert sum(agents) == 1  # Ana, by whatever presence she has

    # The agent joins: the chat leaves the queue and is active.
    status, _ = await guarded.post(f"/console/api/{token}/join", {"name": "Ana"})
    assert status == 200
    joined = await scrape(guarded)
    assert value(joined, "bridge_queue_length", channel=channel) == 0
    assert value(joined, "bridge_conversations", status="active", channel=channel) == 1


async def test_a_refused_delivery_is_counted_dead_and_stays_in_the_gauge(
    guarded: RunningBridge, bot: FakeBot
) -> None:
    """A receiver's 4xx gives the delivery up: counted dead once, shown as a dead item."""
    before = await scrape(guarded)
    bot.script.extend([400] * 50)
    status, _ = await guarded.post("/v1/handoffs", handoff_body(bot.url), headers=BOT)
    assert status == 201
    after = await eventually(
        lambda: scrape(guarded),
        lambda samples: value(samples, "bridge_outbox_dead") >= 1,
        what="a dead delivery in the metrics",
        show=brief,
    )
    dead = value(after, "bridge_deliveries_total", kind="bot.event", outcome="dead")
    assert dead == value(before, "bridge_deliveries_total", kind="bot.event", outcome="dead") + 1
    failed = value(after, "bridge_deliveries_total", kind="bot.event", outcome="failed")
    assert failed > value(before, "bridge_deliveries_total", kind="bot.event", outcome="failed")


async def test_handoffs_are_counted_by_rule_and_outcome(
    guarded: RunningBridge, bot: FakeBot
) -> None:
    """A new handoff, the same one again, and one naming a channel that does not exist."""
    before = await scrape(guarded)
    body = handoff_body(bot.url, conversation_id="bot-conv-metrics")
    for expected in (201, 200):
        status, answer = await guarded.post("/v1/handoffs", body, headers=BOT)
        assert status == expected, answer
    status, _ = await guarded.post("/v1/handoffs", body | {"channel": "nowhere"}, headers=BOT)
    assert 400 <= status < 500
    after = await scrape(guarded)
    handoffs = "bridge_handoffs_total"
    for rule, outcome in [("region", "created"), ("region", "existing"), ("none", "refused")]:
        counted = value(after, handoffs, rule=rule, outcome=outcome)
        assert counted == value(before, handoffs, rule=rule, outcome=outcome) + 1, (rule, outcome)
