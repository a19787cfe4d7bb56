"""Region routing as VivoChat describes it: exact code → channel, else the main channel."""

from __future__ import annotations

import pytest

from bridge.routing import RegionRouter
from bridge.routing.regions import UnknownMainChannel

ROUTER = RegionRouter(
    {"mysite": {"en": "mysite-en", "es": "mysite-es", "de": "mysite-de"}, "shop": {}}
)


@pytest.mark.parametrize(
    ("code", "channel", "rule"),
    [
        ("es", "mysite-es", "region"),
        ("de", "mysite-de", "region"),
        ("xx", "mysite", "region_unknown"),
        ("ES", "mysite", "region_unknown"),  # the code must match exactly
        (" es", "mysite", "region_unknown"),
        (None, "mysite", "region_missing"),
        ("", "mysite", "region_missing"),
    ],
)
def test_resolve(code: str | None, channel: str, rule: str) -> None:
    decision = ROUTER.resolve("mysite", code)
    assert (decision.main_channel, decision.channel, decision.rule) == ("mysite", channel, rule)
    assert decision.reason == decision.trace[0]
    assert channel in decision.reason


def test_main_channel_without_regions_keeps_everything() -> None:
    assert ROUTER.resolve("shop", "en").channel == "shop"


def test_unknown_main_channel_is_an_error() -> None:
    with pytest.raises(UnknownMainChannel):
        ROUTER.resolve("elsewhere", "en")


def test_router_does_not_change_when_its_input_does() -> None:
    table = {"m": {"a": "m-a"}}
    router = RegionRouter(table)
    table["m"]["a"] = "changed"
    assert router.resolve("m", "a").channel == "m-a"
