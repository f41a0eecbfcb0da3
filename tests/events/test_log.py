"""The event log over storage: one order for every writer, compaction, retention."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from arca.events.log import EventFilter, EventId, EventLog, full_type
from arca.storage import layout
from arca.storage.driver import AlreadyExists
from arca.storage.drivers.memory import MemoryDriver

DAY = 86400.0
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp()


class _JitteryDriver(MemoryDriver):
    """A little random latency on every call, so concurrent writers really interleave."""

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        await asyncio.sleep(random.uniform(0, 0.002))
        await super().put(path, data, if_absent=if_absent)

    async def get(self, path: str) -> bytes:
        await asyncio.sleep(random.uniform(0, 0.001))
        return await super().get(path)


def _event(repository: str, n: int, moment: float = NOW) -> dict[str, object]:
    when = datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "id": "",
        "source": "/test",
        "type": full_type("tag.moved"),
        "time": when,
        "subject": f"{repository}:{n}",
        "data": {"repository": repository, "n": n, "actor": None},
    }


async def _all(log: EventLog, n: int = 1000) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    after = None
    while True:
        page = await log.page(after, n)
        found += page.events
        if not page.more:
            return found
        after = EventId.parse(page.cursor or "")


def test_two_writers_on_one_store_give_one_dense_order_without_duplicates() -> None:
    async def scenario() -> None:
        driver = _JitteryDriver()
        one, two = EventLog(driver), EventLog(driver)

        async def writer(log: EventLog, name: str) -> list[str]:
            ids = []
            for n in range(60):
                ids += await log.append([_event(name, n)])
            return ids

        ids_one, ids_two = await asyncio.gather(writer(one, "one"), writer(two, "two"))
        assert len(set(ids_one) | set(ids_two)) == 120
        seen_one, seen_two = await _all(one, 7), await _all(two, 7)
        assert seen_one == seen_two
        ids = [str(event["id"]) for event in seen_one]
        assert ids == sorted(ids)
        assert len(ids) == 120
        commits = sorted({EventId.parse(i).commit for i in ids})
        assert commits == list(range(1, len(commits) + 1)), "no gaps"
        for name in ("one", "two"):  # each writer's own events stay in its order
            mine = [event["data"]["n"] for event in seen_one if event["data"]["repository"] == name]  # type: ignore[index]
            assert mine == list(range(60))

    asyncio.run(scenario())


class _CountingDriver(MemoryDriver):
    """Counts create-only writes refused and listings (what a stale head costs)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0
        self.listings = 0

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        try:
            await super().put(path, data, if_absent=if_absent)
        except AlreadyExists:
            self.refused += 1
            raise

    def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        self.listings += 1
        return super().list(prefix, start_after)


def test_two_processes_taking_turns_lose_one_write_each_then_look_before_writing() -> None:
    """`--workers 2`: each writer's head is one behind after the other's commit; after
    losing a number once, a writer looks (exists) before writing, so later turns cost
    no failed fsynced write and no listing."""

    async def scenario() -> None:
        driver = _CountingDriver()
        one, two = EventLog(driver), EventLog(driver)
        for n in range(10):
            await one.append([_event("one", n)])
            await two.append([_event("two", n)])
        assert driver.refused <= 2
        listed = driver.listings
        for n in range(10, 30):
            await one.append([_event("one", n)])
            await two.append([_event("two", n)])
        assert driver.refused <= 2
        assert driver.listings == listed
        ids = [str(event["id"]) for event in await _all(one)]
        assert [EventId.parse(i).commit for i in ids] == list(range(1, 61))

    asyncio.run(scenario())


def test_a_writer_far_behind_lists_again_and_numbers_on_without_gaps() -> None:
    async def scenario() -> None:
        driver = _CountingDriver()
        behind, busy = EventLog(driver), EventLog(driver)
        await behind.append([_event("behind", 0)])
        for n in range(40):  # another replica appends many commits meanwhile
            await busy.append([_event("busy", n)])
        [new_id] = await behind.append([_event("behind", 1)])
        assert EventId.parse(new_id).commit == 42
        ids = [str(event["id"]) for event in await _all(busy)]
        assert [EventId.parse(i).commit for i in ids] == list(range(1, 43))

    asyncio.run(scenario())


def test_concurrent_appends_in_one_process_share_commits() -> None:
    async def scenario() -> None:
        driver = _JitteryDriver()
        log = EventLog(driver)
        ids = await asyncio.gather(*(log.append([_event("r", n)]) for n in range(50)))
        flat = [i for group in ids for i in group]
        assert len(set(flat)) == 50
        commits = {EventId.parse(i).commit for i in flat}
        assert len(commits) < 50  # group commit: fewer storage writes than appends
        assert [info.path async for info in driver.walk(layout.event_log())]

    asyncio.run(scenario())


def test_a_reader_never_skips_an_event_that_lands_while_it_reads() -> None:
    """Follow the log while two writers append: the follower sees every event once."""

    async def scenario() -> None:
        driver = _JitteryDriver()
        writers = [EventLog(driver), EventLog(driver)]
        reader = EventLog(driver)
        done = asyncio.Event()

        async def write(log: EventLog, name: str) -> None:
            for n in range(40):
                await log.append([_event(name, n)])

        async def follow() -> list[str]:
            seen: list[str] = []
            after = None
            while True:
                finished = done.is_set()
                page = await reader.page(after, 5)
                seen += [str(event["id"]) for event in page.events]
                if page.cursor:
                    after = EventId.parse(page.cursor)
                if finished and not page.more:
                    return seen
                await asyncio.sleep(0)

        follower = asyncio.create_task(follow())
        await asyncio.gather(*(write(log, f"w{i}") for i, log in enumerate(writers)))
        done.set()
        seen = await follower
        assert len(seen) == 80
        assert len(set(seen)) == 80
        assert seen == sorted(seen)

    asyncio.run(scenario())


def test_filters_by_type_and_repository_glob() -> None:
    async def scenario() -> None:
        log = EventLog(MemoryDriver())
        await log.append([_event("team/app", 1), _event("team/db", 2), _event("other", 3)])
        page = await log.page(None, 10, EventFilter(repositories=("team/*",)))
        assert [event["subject"] for event in page.events] == ["team/app:1", "team/db:2"]
        page = await log.page(None, 10, EventFilter(types=frozenset({full_type("tag.deleted")})))
        assert page.events == []
        assert page.cursor is not None

    asyncio.run(scenario())


def test_a_filtered_page_stops_at_the_scan_bound_with_a_cursor() -> None:
    async def scenario() -> None:
        log = EventLog(MemoryDriver())
        for n in range(30):
            await log.append([_event("noise", n)])
        page = await log.page(None, 10, EventFilter(repositories=("wanted",)), scan_limit=12)
        assert page.events == []
        assert page.more
        rest = await log.page(EventId.parse(page.cursor or ""), 100)
        assert len(rest.events) == 18

    asyncio.run(scenario())


def test_compacted_events_read_the_same_and_writers_go_on_numbering() -> None:
    async def scenario() -> None:
        driver = MemoryDriver()
        clock = [NOW]
        log = EventLog(driver, clock=lambda: clock[0])
        for day in range(3):  # three days of events, ten a day, then two recent ones
            for n in range(10):
                await log.append([_event("r", day * 10 + n, NOW - (5 - day) * DAY + n)])
        for n in range(2):
            await log.append([_event("r", 100 + n, NOW - 60)])
        before = await _all(log, 7)
        compacted, deleted = await log.maintain(compact_after=DAY, retention=0)
        assert (compacted, deleted) == (30, 0)
        segments = [info.path async for info in driver.walk(layout.event_segments())]
        assert len(segments) == 3  # one per day
        fresh = EventLog(driver)  # another replica, knowing nothing
        assert await _all(fresh, 7) == before
        middle = str(before[14]["id"])
        page = await fresh.page(EventId.parse(middle), 3)
        assert [event["id"] for event in page.events] == [e["id"] for e in before[15:18]]
        [new_id] = await fresh.append([_event("r", 200)])
        assert EventId.parse(new_id).commit == 33

    asyncio.run(scenario())


def test_retention_deletes_old_events_and_reading_starts_at_the_oldest_kept() -> None:
    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver, clock=lambda: NOW)
        for n in range(5):
            await log.append([_event("r", n, NOW - 10 * DAY)])
        for n in range(5):
            await log.append([_event("r", 10 + n, NOW - 3 * DAY)])
        for n in range(3):
            await log.append([_event("r", 20 + n, NOW - 10)])
        await log.maintain(compact_after=DAY, retention=0)  # the first ten into segments
        _, deleted = await log.maintain(compact_after=DAY, retention=5 * DAY)
        assert deleted == 5
        kept = await _all(EventLog(driver), 4)
        assert [event["data"]["n"] for event in kept] == [10, 11, 12, 13, 14, 20, 21, 22]  # type: ignore[index]
        page = await log.page(EventId(2, 0), 2)  # a cursor from before retention
        assert [event["data"]["n"] for event in page.events] == [10, 11]

    asyncio.run(scenario())


def test_the_newest_commit_is_never_compacted_or_deleted() -> None:
    async def scenario() -> None:
        driver = MemoryDriver()
        log = EventLog(driver, clock=lambda: NOW)
        for n in range(4):
            await log.append([_event("r", n, NOW - 30 * DAY)])
        assert await log.maintain(compact_after=DAY, retention=DAY) == (3, 3)
        assert await driver.exists(layout.event_commit(4))
        [new_id] = await EventLog(driver).append([_event("r", 9)])
        assert new_id.startswith("000000000005-")

    asyncio.run(scenario())


@pytest.mark.parametrize("value", ["", "12", "000000000001", "x00000000001-0000", "1-1"])
def test_a_malformed_event_id_is_refused(value: str) -> None:
    from arca.errors import ParameterInvalid

    with pytest.raises(ParameterInvalid):
        EventId.parse(value)
