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
