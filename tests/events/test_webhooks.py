"""Webhook delivery in-process: headers and signature, dead letters and redelivery,
one deliverer at a time, SSRF refusal, and flat memory while a receiver is down."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import tracemalloc
from collections.abc import Callable

import httpx

from arca.config import WebhookSettings
from arca.events.log import EventLog, full_type
from arca.events.webhooks import Webhooks
from arca.storage.drivers.filesystem import FilesystemDriver
from arca.storage.drivers.memory import MemoryDriver

SECRET = "shh"


def _hook(**overrides: object) -> WebhookSettings:
    fields: dict[str, object] = {
        "url": "http://127.0.0.1:9/hook",
        "name": "ci",
        "secret": SECRET,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "max_attempts": 3,
    }
    fields.update(overrides)
    return WebhookSettings(**fields)  # type: ignore[arg-type]


def _event(repository: str, n: int) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": "",
        "source": "/arca",
        "type": full_type("tag.moved"),
        "time": "2026-12-01T12:00:00.000000Z",
        "subject": f"{repository}:v{n}",
        "data": {"repository": repository, "tag": f"v{n}", "actor": None},
    }


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def _run(hooks: Webhooks) -> asyncio.Task[None]:
    await hooks.start()
    return asyncio.create_task(hooks.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_each_post_is_a_signed_cloudevent_with_ce_headers() -> None:
    received: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver)
        hooks = Webhooks(driver, log, [_hook()], 0.01, transport=httpx.MockTransport(answer))
        task = await _run(hooks)
        [event_id] = await log.append([_event("team/app", 1)])
        await _until(lambda: len(received) == 1)
        await _stop(task)
        request = received[0]
        body = request.content
        assert json.loads(body)["id"] == event_id
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["Arca-Signature"] == expected
        assert request.headers["ce-id"] == event_id
        assert request.headers["ce-type"] == "dev.arca.tag.moved"
        assert request.headers["ce-specversion"] == "1.0"
        assert request.headers["ce-source"] == "/arca"
        assert request.headers["ce-subject"] == "team/app:v1"
        assert request.headers["content-type"].startswith("application/cloudevents+json")
        assert request.headers["host"] == "127.0.0.1:9"
        assert request.url.host == "127.0.0.1"  # connected to the address it checked

    asyncio.run(scenario())


def test_filters_send_only_matching_events_and_the_cursor_skips_the_rest() -> None:
    received: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(request.content))
        return httpx.Response(200)

    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver)
        hook = _hook(repositories=("team/*",), types=("tag.moved",))
        hooks = Webhooks(driver, log, [hook], 0.01, transport=httpx.MockTransport(answer))
        task = await _run(hooks)
        for n in range(3):
            await log.append([_event("other", n), _event("team/app", n)])
        await _until(lambda: len(received) == 3)
        await asyncio.sleep(0.1)
        await _stop(task)
        assert [e["subject"] for e in received] == ["team/app:v0", "team/app:v1", "team/app:v2"]
        status = (await hooks.status())[0]
        assert status["cursor"] == received[-1]["id"]

    asyncio.run(scenario())


def test_a_failing_event_becomes_a_dead_letter_and_can_be_redelivered() -> None:
    failing = [True]
    received: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        event = json.loads(request.content)
        if failing[0] and event["subject"] == "team/app:v0":
            return httpx.Response(500)
        received.append(str(event["subject"]))
        return httpx.Response(200)

    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver)
        hooks = Webhooks(driver, log, [_hook()], 0.01, transport=httpx.MockTransport(answer))
        task = await _run(hooks)
        await log.append([_event("team/app", 0)])
        await log.append([_event("team/app", 1)])
        await _until(lambda: received == ["team/app:v1"])  # delivery went on past it
        [letter] = await hooks.dead_letters("ci")
        assert letter["attempts"] == 3
        assert letter["error"] == "HTTP 500"
        assert letter["event"]["subject"] == "team/app:v0"
        failing[0] = False
        assert await hooks.redeliver("ci", None) == [letter["event"]["id"]]
        await _until(lambda: received == ["team/app:v1", "team/app:v0"])
        await asyncio.sleep(0.05)
        assert await hooks.dead_letters("ci") == []
        await _stop(task)

    asyncio.run(scenario())


def test_only_one_of_two_replicas_delivers() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["ce-id"])
        return httpx.Response(200)

    async def scenario() -> None:
        driver = MemoryDriver()
        logs = [EventLog(driver), EventLog(driver)]
        replicas = [
            Webhooks(driver, log, [_hook()], 0.01, transport=httpx.MockTransport(answer))
            for log in logs
        ]
        tasks = [await _run(hooks) for hooks in replicas]
        ids = []
        for n in range(20):
            ids += await logs[n % 2].append([_event("team/app", n)])
        await _until(lambda: set(calls) >= set(ids))
        await asyncio.sleep(0.2)
        for task in tasks:
            await _stop(task)
        assert calls == ids  # each once, in log order: one deliverer

    asyncio.run(scenario())


def test_a_target_resolving_to_a_metadata_address_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver)
        hook = _hook(url="http://169.254.169.254/latest/meta-data", max_attempts=1)
        hooks = Webhooks(driver, log, [hook], 0.01, transport=httpx.MockTransport(answer))
        task = await _run(hooks)
        await log.append([_event("team/app", 0)])
        for _ in range(500):
            if await hooks.dead_letters("ci"):
                break
            await asyncio.sleep(0.01)
        await _stop(task)
        [letter] = await hooks.dead_letters("ci")
        assert "link-local or metadata address" in letter["error"]

    asyncio.run(scenario())


def test_allow_link_local_lets_it_through() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200)

    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver)
        hook = _hook(url="http://169.254.169.254/x", allow_link_local=True)
        hooks = Webhooks(driver, log, [hook], 0.01, transport=httpx.MockTransport(answer))
        task = await _run(hooks)
        await log.append([_event("team/app", 0)])
        await _until(lambda: len(sent) == 1)
        await _stop(task)

    asyncio.run(scenario())


def test_memory_stays_flat_while_a_receiver_is_down(tmp_path) -> None:
    """4,500 events pile up while every POST fails: the deliverer holds none of them."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async def scenario() -> tuple[int, int]:
        driver = FilesystemDriver(str(tmp_path), fsync=False)  # stored events are not in memory
        log = EventLog(driver)
        hook = _hook(max_attempts=1_000_000, backoff_seconds=0.01, backoff_max_seconds=0.05)
        hooks = Webhooks(driver, log, [hook], 0.01, transport=httpx.MockTransport(answer))
        task = await _run(hooks)
        for n in range(10):
            await log.append([_event("team/app", n * 50 + i) for i in range(50)])
        await asyncio.sleep(0.2)
        tracemalloc.start()
        first, _ = tracemalloc.get_traced_memory()
        for n in range(90):
            await log.append([_event("team/app", n * 50 + i) for i in range(50)])
        await asyncio.sleep(0.2)
        second, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await _stop(task)
        return first, second

    first, second = asyncio.run(scenario())
    assert second - first < 1 << 20, (first, second)  # 4,500 events held would be ~7 MB
