"""Join links are signed, bound to one conversation, and expire."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bridge.errors import Forbidden
from bridge.ports.links import JoinLinks

LINKS = JoinLinks("s3cret", "https://bridge.example.com/", ttl_seconds=3600)


def test_link_round_trips_to_its_conversation() -> None:
    url = LINKS.url("conv-1")
    assert url.startswith("https://bridge.example.com/console/c/")
    assert LINKS.conversation_id(url.rsplit("/", 1)[1]) == "conv-1"


def test_tampered_token_is_forbidden() -> None:
    token = LINKS.token("conv-1")
    payload, stamp, signature = token.split(".")
    other = LINKS.token("conv-2").split(".")[0]
    for bad in (
        f"{other}.{stamp}.{signature}",  # another conversation with this signature
        # The first character: the last one may carry only base64 padding bits.
        f"{payload}.{stamp}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}",
        "garbage",
        JoinLinks("other-secret", "https://x", 3600).token("conv-1"),
    ):
        with pytest.raises(Forbidden, match="not valid"):
            LINKS.conversation_id(bad)


def test_expired_token_is_forbidden() -> None:
    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    old = URLSafeTimedSerializer("s3cret", salt=JoinLinks._SALT, signer=PastSigner).dumps("conv-1")
    with pytest.raises(Forbidden, match="expired"):
        LINKS.conversation_id(old)


def test_a_token_checked_before_is_still_refused_once_it_has_expired() -> None:
    """A verified token is remembered, but its age is checked again on every use."""
    now = [time.time()]
    links = JoinLinks("s3cret", "https://bridge.example.com/", 3600, clock=lambda: now[0])
    token = links.token("conv-1")
    assert links.conversation_id(token) == "conv-1"
    assert links.conversation_id(token) == "conv-1"
    now[0] += 3601
    with pytest.raises(Forbidden, match="expired"):
        links.conversation_id(token)
    now[0] -= 7200  # a clock set back: a signature from the future is refused too
    with pytest.raises(Forbidden, match="expired"):
        links.conversation_id(token)


def test_a_remembered_token_does_not_make_a_tampered_one_valid() -> None:
    token = LINKS.token("conv-1")
    assert LINKS.conversation_id(token) == "conv-1"
    _, stamp, signature = token.split(".")
    other = LINKS.token("conv-2").split(".")[0]
    with pytest.raises(Forbidden, match="not valid"):
        LINKS.conversation_id(f"{other}.{stamp}.{signature}")
