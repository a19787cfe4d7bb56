"""The code stays lint- and type-clean (ruff, mypy) and its log calls work at every level."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


# ---- log calls ------------------------------------------------------------------------

# What `logging` keeps on every record: an `extra=` key among these raises KeyError
# ("Attempt to overwrite ...") when the record is made, i.e. only at a level that is on.
RESERVED_LOG_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}


def reserved_extra_keys(source: str, filename: str) -> list[str]:
    """`file:line key` for every logging call whose literal `extra=` dict uses a reserved key."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
        ):
            continue
        for keyword in node.keywords:
            if keyword.arg != "extra" or not isinstance(keyword.value, ast.Dict):
                continue
            for key in keyword.value.keys:
                if isinstance(key, ast.Constant) and key.value in RESERVED_LOG_KEYS:
                    found.append(f"{filename}:{key.lineno} {key.value!r}")
    return found


def test_no_log_call_passes_a_reserved_record_attribute() -> None:
    """No `log.*(..., extra={...})` in bridge/ or adapters/ names a LogRecord attribute."""
    files = sorted([*(ROOT / "bridge").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")])
    assert len(files) > 20, "the walk found the packages"
    problems = [
        problem
        for path in files
        for problem in reserved_extra_keys(
            path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        )
    ]
    assert problems == [], "extra= keys that logging reserves:\n" + "\n".join(problems)


def test_reserved_key_check_catches_the_tovie_mistake() -> None:
    """The check sees a reserved key however the call is spelled."""
    source = (
        "log.info('tovie.destination_selected', extra={'bot': b, 'created': c})\n"
        "logger.exception('x', extra={'msg': 1})\n"
        "logging.getLogger(__name__).warning('y', extra={'ok': 1, 'name': 2})\n"
    )
    assert reserved_extra_keys(source, "sample.py") == [
        "sample.py:1 'created'",
        "sample.py:2 'msg'",
        "sample.py:3 'name'",
    ]


def test_the_suite_runs_at_the_default_log_level(caplog: pytest.LogCaptureFixture) -> None:
    """pyproject's log_level: INFO records of the bridge's loggers are made in every test."""
    logging.getLogger("bridge.services.handoff").info("quality.probe")
    assert "quality.probe" in caplog.messages


def test_adapter_tests_pass_at_debug() -> None:
    """One pass of the adapter tests at DEBUG, so the debug-only log calls run too."""
    result = _run(
        "pytest", "tests/adapters", "-q", "-p", "no:cacheprovider", "-o", "log_level=DEBUG"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
