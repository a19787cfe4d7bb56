"""Events to bots verify with the standardwebhooks package; our signer is independent of it."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bridge.relay import signing
from bridge.relay.jobs import BotEvent
from tests.fakes import WEBHOOK_SECRET


def test_signed_event_verifies_with_standardwebhooks() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    event = BotEvent.about("conv-1", "http://bot/cb", "agent.message", {"text": "héllo"}, now)
    row = event.to_row(now)
    body = row.payload["body"]
    headers = signing.headers(
        signing.secret_key(WEBHOOK_SECRET), row.idempotency_key, int(time.time()), body
    )
    verified = Webhook(WEBHOOK_SECRET).verify(body, headers)
    assert verified == json.loads(body)
    assert verified["type"] == "agent.message"
    assert set(verified) == {"type", "timestamp", "data"}


def test_tampered_body_or_wrong_secret_fail_verification() -> None:
    key = signing.secret_key(WEBHOOK_SECRET)
    body = '{"type":"agent.joined","timestamp":"t","data":{}}'
    headers = signing.headers(key, "msg_1", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(body.replace("joined", "joinee"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_new_secret_has_the_whsec_form() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(signing.secret_key(secret)) == 32
    assert secret != signing.new_secret()
