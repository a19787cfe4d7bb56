"""The relay benchmark still drives the service end to end, in its smoke mode (~15 s).

No timing is asserted: the figures' values are the benchmark's to print. This proves
that it still starts the service, opens conversations (console and Kommunicate), gets
messages through both ways and reports every measurement, so a change to the routes or
the adapters it uses shows here rather than the next time someone runs it.
"""

from __future__ import annotations

import json

import pytest

from bench.relay.__main__ import main


def test_smoke_run_reports_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--smoke", "--only", "sqlite", "--concurrency", "8", "--json"]) == 0
    table, _, raw = capsys.readouterr().out.partition("\n{\n")
    figures = json.loads("{\n" + raw)
    anchors, [bridge] = figures["anchors"], figures["bridge"]
    assert bridge["error"] is None, bridge["notes"]
    assert anchors["bare"]["ok"] > 0
    assert anchors["relay"]["delivered"] > 0
    assert bridge["handoffs_empty"]["ok"] > 0
    assert bridge["handoffs_waiting"]["ok"] > 0
    for direction in ("customer", "customer_paced", "agent"):
        assert bridge[direction]["delivered"] > 0, direction
    assert set(bridge["rss_mb"]) == {"ready", "active", "end"}
    for row in (
        "bare aiohttp, parse 1 KB JSON",
        "POST /v1/handoffs, 0 waiting",
        "customer→platform accepted",
        "agent→bot accepted",
        "bridge CPU per delivered message",
        "RSS when ready",
    ):
        assert row in table, row
