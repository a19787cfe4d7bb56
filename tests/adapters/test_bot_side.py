"""The bot-side contract for the bots the bridge ships: the plain webhook bot, Tovie and Jivo.

Each harness wires the adapter to the fake receiver of its deliveries (the bot's
callback endpoint, Tovie's Operator API webhook) through the real HTTP client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import ClientSession

from adapters.jivochat import JivoBotProvider
from adapters.tovie import TovieBot
from adapters.webhook import StandardWebhooksBot
from bridge.ports.bot_side import DEFAULT_BOT
from bridge.ports.context import AdapterContext
from bridge.ports.http import HttpClient
from tests.adapters.bot_contract import QUICK_RETRIES, BotHarness, BotSideContract
from tests.adapters.fake_jivochat import BOT_TOKEN, PROVIDER_ID
from tests.adapters.fake_tovie import FakeTovie
from tests.fakes import WEBHOOK_SECRET, FakeBot

TOVIE_TOKEN = "t0vie-apiurl-secret-contract"


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with ClientSession() as session:
        http = HttpClient(session, timeout=5, quick_retries=QUICK_RETRIES)
        yield AdapterContext(http, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
async def bot() -> AsyncIterator[FakeBot]:
    async with FakeBot() as receiver:
        yield receiver


@dataclass
class ReceiverHarness(BotHarness):
    """A bot adapter and the fake that receives its deliveries (a FakeBot or FakeTovie)."""

    adapter: StandardWebhooksBot | JivoBotProvider | TovieBot  # type: ignore[assignment]
    receiver: FakeBot | FakeTovie
    target: str
    secrets: list[str]
    served: tuple[str, str] | None = None
    api_token: str | None = None

    def arrivals(self) -> Counter[str]:
        # Both fakes count a delivery once it is authenticated: the FakeBot once its
        # signature verified, FakeTovie once the apiKey in its URL matched.
        return Counter(self.receiver.attempts)

    def script(self, *statuses: int) -> None:
        self.receiver.script.extend(statuses)


class TestStandardWebhooksBotContract(BotSideContract):
    """The default bot side: signed events, no inbound API."""

    @pytest.fixture
    def harness(self, context: AdapterContext, bot: FakeBot) -> ReceiverHarness:
        adapter = StandardWebhooksBot.from_settings(DEFAULT_BOT, {}, context)
        return ReceiverHarness(adapter, bot, bot.url, [WEBHOOK_SECRET])


class TestJivoBotProviderContract(BotSideContract):
    """Jivo's Bot API provider: the bot's events signed, Jivo's calls by the URL token."""

    @pytest.fixture
    def harness(
        self, context: AdapterContext, bot: FakeBot, monkeypatch: pytest.MonkeyPatch
    ) -> ReceiverHarness:
        monkeypatch.setenv("JIVO_BOT_TOKEN", BOT_TOKEN)
        options = {
            "provider_id": PROVIDER_ID,
            "token": "JIVO_BOT_TOKEN",
            "bot_api_url": "https://bot.jivo.test",
            "bot_url": bot.url,
        }
        adapter = JivoBotProvider.from_settings("jivo", options, context)
        secrets = [BOT_TOKEN, WEBHOOK_SECRET]
        return ReceiverHarness(adapter, bot, bot.url, secrets, ("POST", "reply"), BOT_TOKEN)


class TestTovieContract(BotSideContract):
    """Tovie's Operator API: events in Tovie's shapes, its calls by the apiUrl token."""

    @pytest.fixture
    async def harness(
        self, context: AdapterContext, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[ReceiverHarness]:
        monkeypatch.setenv("TOVIE_CONTRACT_TOKEN", TOVIE_TOKEN)
        adapter = TovieBot.from_settings("tovie", {"api_token": "TOVIE_CONTRACT_TOKEN"}, context)
        async with FakeTovie() as tovie:
            served = ("POST", "setWebhook")
            yield ReceiverHarness(
                adapter, tovie, tovie.webhook_url, [TOVIE_TOKEN], served, TOVIE_TOKEN
            )
