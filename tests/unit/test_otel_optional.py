"""OpenTelemetry is optional: not imported unless export is asked for, and a clear error
when it is asked for but not installed. Each check runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ENDPOINTS}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_an_endpoint_opentelemetry_is_never_imported() -> None:
    done = _run(
        "import sys\n"
        "from bridge import app, otel\n"
        "from bridge.settings import TracingSettings\n"
        "assert not otel.wanted(TracingSettings())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_endpoint_without_the_sdk_is_a_configuration_error() -> None:
    done = _run(
        "import sys\n"
        "sys.modules['opentelemetry.sdk'] = None  # as if the otel extra were not installed\n"
        "from bridge import otel\n"
        "from bridge.errors import ConfigError\n"
        "from bridge.settings import TracingSettings\n"
        "try:\n"
        "    otel.make_provider(TracingSettings(otlp_endpoint='http://127.0.0.1:4318'))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'handoff-bridge[otel]'" in done.stdout
