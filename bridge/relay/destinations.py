"""Who receives a delivery: the unit that gets a share of the worker's slots."""

from __future__ import annotations

from urllib.parse import urlsplit

from bridge.db.repo.delivery import like_prefix


def destination(target: str) -> str:
    """Who receives a row: a URL's host and port, else the target itself (a channel)."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.hostname:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return target
        return f"{parts.hostname}:{port}"
    return target


def target_patterns(target: str) -> list[str]:
    """LIKE patterns for the rows that go where `target` goes, as it is spelt."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.netloc:
        base = f"{parts.scheme}://{parts.netloc}"
        return [like_prefix(base + "/"), like_prefix(base + "?"), like_prefix(base)[:-1]]
    # The pattern without its trailing % matches the target exactly.
    return [like_prefix(target)[:-1]]
