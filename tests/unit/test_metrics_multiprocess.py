"""Replicas on one host share PROMETHEUS_MULTIPROC_DIR: a scrape of any adds up all of them.

Each replica is a real process (the directory must be set before prometheus_client is
imported, as a deployment sets it before the service starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent.parent

COUNT = """
from bridge import metrics
for _ in range({n}):
    metrics.http_request("POST", "/v1/handoffs", 201, 0.02)
metrics.delivered("bot.event", 1.5)
"""

SCRAPE = """
from prometheus_client import generate_latest
from bridge import metrics
print(generate_latest(metrics.exposition_registry()).decode())
"""


def _run(code: str, directory: Path) -> str:
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_scrape_adds_up_every_replicas_counts(tmp_path: Path) -> None:
    _run(COUNT.format(n=2), tmp_path)
    _run(COUNT.format(n=3), tmp_path)
    assert list(tmp_path.glob("*.db")), "each replica keeps its values in the directory"
    text = _run(SCRAPE, tmp_path)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    requests = (("method", "POST"), ("route", "/v1/handoffs"), ("status", "201"))
    assert samples[("bridge_http_requests_total", requests)] == 5
    assert samples[("bridge_delivery_lag_seconds_count", (("kind", "bot.event"),))] == 2
    assert samples[("bridge_delivery_lag_seconds_sum", (("kind", "bot.event"),))] == 3.0
