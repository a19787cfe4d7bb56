"""The test kit does what the suite relies on: waits that say what they saw, and a fake base
that records every call, answers a script, holds requests and can lose an answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.kit.eventually import eventually
from tests.kit.fake_platform import FakePlatform


@dataclass
class Notes(FakePlatform):
    """A small platform: POST /notes keeps a note; the script answers before it is kept."""

    notes: list[Any] = field(default_factory=list)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/notes", self._add)

    async def _add(self, request: web.Request) -> web.Response:
        if (status := self.scripted()) is not None:
            return web.json_response({"error": "scripted"}, status=status)
        self.notes.append(await request.json())
        return web.json_response({"kept": len(self.notes)}, status=201)

    def report(self) -> str:
        return f"notes={self.notes}"


async def _post(fake: Notes, body: Any, **kwargs: Any) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(fake.url_for("/notes"), json=body, **kwargs) as response,
    ):
        return response.status


# -- eventually ----------------------------------------------------------------------------


async def test_eventually_returns_the_first_value_that_holds() -> None:
    seen: list[int] = []

    def probe() -> int:
        seen.append(len(seen) + 1)
        return seen[-1]

    assert await eventually(probe, lambda n: n >= 3, every=0) == 3
    assert seen == [1, 2, 3]


async def test_eventually_awaits_an_async_probe() -> None:
    answers = iter([(503, None), (200, {"ok": True})])

    async def get() -> tuple[int, Any]:
        return next(answers)

    assert await eventually(get, lambda answer: answer[0] == 200, every=0) == (200, {"ok": True})


async def test_eventually_fails_with_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError) as failure:
        await eventually(lambda: [1, 2], lambda items: len(items) > 2, within=0, what="3 items")
    assert "3 items" in str(failure.value)
    assert "[1, 2]" in str(failure.value)


async def test_a_probe_that_raises_ends_the_wait_at_once() -> None:
    def probe() -> bool:
        raise AssertionError("the service exited with 2")

    with pytest.raises(AssertionError, match="exited with 2"):
        await eventually(probe, within=60)


# -- the fake-platform base --------------------------------------------------------------


async def test_every_call_is_recorded_as_it_arrived() -> None:
    async with Notes() as fake:
        assert await _post(fake, {"text": "hi"}, headers={"X-Key": "k1"}) == 201
        async with (
            aiohttp.ClientSession() as http,
            http.put(fake.url_for("/elsewhere?draft=1"), data=b"not json") as response,
        ):
            assert response.status == 404  # no such endpoint, and still recorded
        assert fake.url == fake.url_for("/").rstrip("/")
    first, second = fake.calls
    assert (first.method, first.path, first.body) == ("POST", "/notes", {"text": "hi"})
    assert first.headers["x-key"] == "k1"
    assert (second.query["draft"], second.body) == ("1", "not json")
    assert fake.called() == [("POST", "/notes"), ("PUT", "/elsewhere")]
    assert fake.paths("POST") == ["/notes"]


async def test_the_script_answers_in_order_then_the_platform_does() -> None:
    async with Notes() as fake:
        fake.script.extend([503, 429])
        statuses = [await _post(fake, {"n": n}) for n in range(3)]
    assert statuses == [503, 429, 201]
    assert fake.notes == [{"n": 2}]
    assert len(fake.calls) == 3


async def test_held_requests_wait_until_released() -> None:
    async with Notes() as fake:
        fake.hold(lambda call: call.body == {"n": "held"}, after=1)
        assert await _post(fake, {"n": "held"}) == 201  # the first one goes through
        held = asyncio.create_task(_post(fake, {"n": "held"}))
        assert await _post(fake, {"n": "free"}) == 201
        await fake.wait_for(lambda f: len(f.held) == 1)
        assert not held.done() and fake.holding
        assert fake.notes == [{"n": "held"}, {"n": "free"}]
        fake.release()
        assert await held == 201
    assert fake.notes == [{"n": "held"}, {"n": "free"}, {"n": "held"}]


async def test_closing_lets_held_requests_finish() -> None:
    fake = Notes()
    await fake.start()
    fake.hold()
    held = asyncio.create_task(_post(fake, {"n": 1}))
    await fake.wait_for(lambda f: bool(f.held))
    await fake.close()
    assert await held == 201


async def test_a_lost_answer_is_handled_but_never_arrives() -> None:
    async with Notes() as fake:
        fake.lost.lose_next()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(fake, {"n": 1})
        assert await _post(fake, {"n": 2}) == 201
    assert fake.notes == [{"n": 1}, {"n": 2}]
    assert fake.lost.lost == 1


async def test_a_wait_that_times_out_shows_the_fakes_report() -> None:
    async with Notes() as fake:
        await _post(fake, {"n": 1})
        with pytest.raises(AssertionError, match=r"notes=\[\{'n': 1\}\]"):
            await fake.wait_for(lambda f: len(f.notes) == 2, within=0)


async def test_the_fake_stops_listening_on_exit() -> None:
    async with Notes() as fake:
        url = fake.url_for("/notes")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.post(url, json={})
