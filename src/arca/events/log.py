"""The event log: every change, once, in one order that every replica reads the same.

The log is a dense sequence of *commits* in storage (`layout.event_commit`). A commit
is one immutable JSON object holding one or more CloudEvents 1.0 events; commit `c`
is written create-only (`put(..., if_absent=True)`) and only by a writer that knows
commit `c - 1` exists. So, whatever the number of replicas appending at once:

- no duplicates: one object per number, the create-only write picks one winner;
- no gaps: `c` never exists before `c - 1` does, so a reader that finds `c` missing
  is at the end of the log (or below what retention deleted), never before a hole
  that will be filled later, and a cursor never skips an event;
- one total order: the order of the numbers, which is also real-time order (a commit
  finished before another started has the smaller number), whatever the clocks say.

An event's id is `<commit>-<index>` (12 and 4 digits), so ids sort in log order.
Concurrent changes in one process share a commit (group commit: one storage write
for everything queued while the previous write was in flight), so the log costs one
write per change at most and far fewer under load. `append` returns only once the
commit is durable in storage; the registry acknowledges a change after that (see
docs/events.md for why no acknowledged change can lack its event).

Old commits are compacted into segment objects (one per day and block, same events,
same ids) and deleted after `retention_seconds`; reading goes through both
transparently. The newest commit is never compacted or deleted, so a writer that
learns the head from a listing always learns the true head.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arca.config import EventSettings
from arca.errors import ParameterInvalid
from arca.registry.events import TYPE_NAMES, DomainEvent
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound
from arca.storage.lease import Lease

log = logging.getLogger(__name__)

TYPE_PREFIX = "dev.arca."
MAX_EVENTS_PER_COMMIT = 1000
SCAN_LIMIT = 10_000
"""Events examined per page at most, whatever the filters: the read bound."""
HEAD_TTL = 30.0
"""Seconds a writer trusts the head it knows before listing again (another replica
may have appended meanwhile; a conflict would tell it too, at the price of a write)."""
SEGMENT_MAX_BYTES = 16 << 20
CONTENDED_SECONDS = 5.0
"""After losing a number to another writer (`--workers 2`, replicas), for this long a
writer first looks whether its next number is taken (one `exists`) rather than
finding out by a failed create-only write, which costs a whole fsynced write."""
_STEPS_BEFORE_LISTING = 8

_EVENT_ID = re.compile(r"(\d{12})-(\d{4})")
_SEGMENT_NAME = re.compile(r"(\d{12})-(\d{12})")

CloudEvent = dict[str, Any]


@dataclass(frozen=True, slots=True, order=True)
class EventId:
    commit: int
    index: int

    def __str__(self) -> str:
        return f"{self.commit:012d}-{self.index:04d}"

    @classmethod
    def parse(cls, value: str) -> EventId:
        match = _EVENT_ID.fullmatch(value)
        if match is None:
            raise ParameterInvalid(
                f"invalid event id {value[:40]!r}: expected <12 digits>-<4 digits>,"
                " as in an event's `id`",
                {"after": value[:40]},
            )
        return cls(int(match[1]), int(match[2]))


def full_type(name: str) -> str:
    return TYPE_PREFIX + name


def parse_types(values: Sequence[str]) -> frozenset[str]:
    """`type` filter values (`manifest.pushed` or `dev.arca.manifest.pushed`), checked."""
    types = set()
    for value in values:
        short = value.removeprefix(TYPE_PREFIX)
        if short not in TYPE_NAMES:
            raise ParameterInvalid(
                f"unknown event type {value[:60]!r}; known: {', '.join(sorted(TYPE_NAMES))}",
                {"type": value[:60]},
            )
        types.add(full_type(short))
    return frozenset(types)


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: frozenset[str] = frozenset()
    """Full CloudEvents types; empty: all."""
    repositories: tuple[str, ...] = ()
    """Globs (`fnmatch`, `*` matches `/` too); empty: all."""

    def matches(self, event: CloudEvent) -> bool:
        if self.types and event.get("type") not in self.types:
            return False
        if self.repositories:
            name = (event.get("data") or {}).get("repository") or ""
            return any(fnmatch.fnmatchcase(name, glob) for glob in self.repositories)
        return True


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[CloudEvent]
    cursor: str | None
    """The last event examined: pass it as `after` to go on (None: the log is empty)."""
    more: bool
    """True when the page stopped at its size or scan bound, not at the end of the log."""


def to_cloudevent(event: DomainEvent, source: str) -> CloudEvent:
    moment = datetime.fromtimestamp(event.time, UTC)
    return {
        "specversion": "1.0",
        "id": "",  # set by the commit
        "source": source,
        "type": full_type(event.type),
        "time": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "data": event.data(),
    }


def _encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class EventLog:
    """Appends commits (the registry's record sink) and reads them back in order."""

    def __init__(
        self, driver: Driver, source: str = "/arca", clock: Callable[[], float] = time.time
    ) -> None:
        self._driver = driver
        self._source = source
        self._clock = clock
        self._queue: list[tuple[list[CloudEvent], asyncio.Future[list[str]]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._head: int | None = None
        self._head_seen = 0.0
        self._contended_until = 0.0
        self._appended = asyncio.Event()
        self._segments: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    # -- writing -------------------------------------------------------------------------

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        await self.append([to_cloudevent(event, self._source) for event in events])

    async def append(self, events: list[CloudEvent]) -> list[str]:
        """Record `events` in one commit (shared with concurrent appends); their ids.

        Returns once the commit is durable. A caller cancelled meanwhile does not stop
        the write: the change it records happened.
        """
        if not events:
            return []
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._queue.append((events, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Finish the writes in flight (at shutdown)."""
        if self._drainer is not None:
            with contextlib.suppress(Exception):
                await self._drainer

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.pop(0)]
            count = len(batch[0][0])
            while self._queue and count + len(self._queue[0][0]) <= MAX_EVENTS_PER_COMMIT:
                item = self._queue.pop(0)
                batch.append(item)
                count += len(item[0])
            events = [event for queued, _ in batch for event in queued]
            try:
                ids: list[str] = []
                for start in range(0, len(events), MAX_EVENTS_PER_COMMIT):
                    ids += await self._write(events[start : start + MAX_EVENTS_PER_COMMIT])
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            position = 0
            for queued, future in batch:
                if not future.done():
                    future.set_result(ids[position : position + len(queued)])
                position += len(queued)
            self._appended.set()
            self._appended = asyncio.Event()

    async def _write(self, events: list[CloudEvent]) -> list[str]:
        if self._head is None or self._clock() - self._head_seen > HEAD_TTL:
            self._head = await self.scan_head(self._head or 0)
            self._head_seen = self._clock()
        writer = uuid.uuid4().hex
        commit = self._head + 1
        steps = 0  # numbers passed since the last listing
        while True:
            if self._clock() < self._contended_until and await self._driver.exists(
                layout.event_commit(commit)
            ):
                # Another writer took it: one look, not a failed (fsynced) write.
                commit, steps = await self._next_number(commit, steps)
                continue
            stamped = [
                {**event, "id": str(EventId(commit, index))} for index, event in enumerate(events)
            ]
            data = _encode({"commit": commit, "writer": writer, "events": stamped})
            try:
                await self._driver.put(layout.event_commit(commit), data, if_absent=True)
            except AlreadyExists:
                if await self._written_by(commit, writer):
                    break  # our own write, acknowledged late (a retried request)
                self._contended_until = self._clock() + CONTENDED_SECONDS
                commit, steps = await self._next_number(commit, steps)
                continue
            break
        self._head, self._head_seen = commit, self._clock()
        return [event["id"] for event in stamped]

    async def _next_number(self, taken: int, steps: int) -> tuple[int, int]:
        """The number to try after `taken` was found written by another writer, and the
        steps since the last listing. `taken` exists, so `taken + 1` may be written
        (its predecessor is known to exist): another process of the same registry
        usually took one or two numbers, not more. Many steps in a row mean a stale
        head (a busy replica): list again."""
        if steps < _STEPS_BEFORE_LISTING:
            return taken + 1, steps + 1
        return await self.scan_head(taken) + 1, 0

    async def _written_by(self, commit: int, writer: str) -> bool:
        try:
            found = json.loads(await self._driver.get(layout.event_commit(commit)))
        except PathNotFound:
            return False
        return bool(found.get("writer") == writer)

    async def scan_head(self, known: int = 0) -> int:
        """The newest commit in storage (at least `known`), by listing."""
        head = known
        if known == 0:
            blocks = await self._blocks(None)
            for block in reversed(blocks):
                commits = await self._commit_names(layout.event_block(block), None)
                if commits:
                    head = commits[-1]
                    break
            async for _first, last, _ in self._segment_ranges(0):
                head = max(head, last)
            return head
        block = known // layout.EVENT_BLOCK
        after_block = f"{block - 1:012d}" if block > 0 else None
        for number in await self._blocks(after_block):
            names = await self._commit_names(layout.event_block(number), f"{known:012d}")
            if names:
                head = max(head, names[-1])
        return head

    async def _blocks(self, start_after: str | None) -> list[int]:
        return [
            int(name)
            async for name in self._driver.list(layout.event_log(), start_after=start_after)
            if name.isdigit()
        ]

    async def _commit_names(self, prefix: str, start_after: str | None) -> list[int]:
        return [
            int(name)
            async for name in self._driver.list(prefix, start_after=start_after)
            if name.isdigit()
        ]

    # -- reading -------------------------------------------------------------------------

    async def page(
        self,
        after: EventId | None,
        limit: int,
        where: EventFilter | None = None,
        scan_limit: int = SCAN_LIMIT,
    ) -> EventPage:
        """Up to `limit` events after `after` (from the oldest when None) that match."""
        where = where or EventFilter()
        found: list[CloudEvent] = []
        scanned = 0
        last = after
        start = after.commit if after is not None else 0
        async for events in self._commits_from(start):
            for event in events:
                event_id = EventId.parse(event["id"])
                if after is not None and event_id <= after:
                    continue
                if len(found) == limit or scanned == scan_limit:
                    return EventPage(found, str(last), more=True)
                scanned += 1
                last = event_id
                if where.matches(event):
                    found.append(event)
        return EventPage(found, str(last) if last is not None else None, more=False)

    async def wait(self, seconds: float) -> None:
        """Until this process appends, or `seconds` (other replicas' appends are
        found by reading again)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._appended.wait(), seconds)

    async def _commits_from(self, commit: int) -> AsyncIterator[list[CloudEvent]]:
        """The events of every available commit from `commit` on, in order.

        Live commits are read a window at a time (concurrent gets, the window doubling
        while every commit is there); a missing one means the end of the log, unless
        a later one exists, in which case it was compacted or deleted by retention.
        """
        window = 1
        while True:
            numbers = range(max(commit, 1), max(commit, 1) + window)
            found = await asyncio.gather(*(self._live(number) for number in numbers))
            for number, events in zip(numbers, found, strict=True):
                if events is None:
                    break
                yield events
                commit = number + 1
            else:
                window = min(window * 2, 32)
                continue
            moved = await self._after_gap(commit)
            if moved is None:
                return
            segment, resume = moved
            for record in segment:
                if record["commit"] >= commit:
                    yield record["events"]
            commit, window = resume, 1

    async def _live(self, commit: int) -> list[CloudEvent] | None:
        try:
            data = await self._driver.get(layout.event_commit(commit))
        except PathNotFound:
            return None
        events: list[CloudEvent] = json.loads(data)["events"]
        return events

    async def _after_gap(self, commit: int) -> tuple[list[dict[str, Any]], int] | None:
        """Where reading goes on when `commit` is not live: (segment records, next
        commit), or None at the end of the log."""
        following = await self._next_live(commit)
        if following is None:
            return None  # the head is always live: nothing at or after `commit` exists
        if following == commit:
            return [], commit  # appended since we looked: read it
        async for first, last, name in self._segment_ranges(commit):
            if last >= commit and first < following:
                return await self._segment(name), last + 1
        return [], following  # deleted by retention: go on at the oldest kept

    async def _next_live(self, commit: int) -> int | None:
        """The first live commit at or after `commit`. Found later than `commit`, it
        proves `commit` was removed (commits are dense), not that it is yet to come."""
        block = commit // layout.EVENT_BLOCK
        after_block = f"{block - 1:012d}" if block > 0 else None
        start_after = f"{commit - 1:012d}" if commit > 0 else None
        for number in await self._blocks(after_block):
            names = await self._commit_names(layout.event_block(number), start_after)
            if names:
                return names[0]
        return None

    async def _segment_ranges(self, commit: int) -> AsyncIterator[tuple[int, int, str]]:
        """(first, last, path) of segments that may hold `commit` or later, in order."""
        block = commit // layout.EVENT_BLOCK
        after_block = f"{block - 1:012d}" if block > 0 else None
        async for name in self._driver.list(layout.event_segments(), start_after=after_block):
            if not name.isdigit():
                continue
            async for segment in self._driver.list(layout.event_segments(int(name))):
                match = _SEGMENT_NAME.fullmatch(segment)
                if match is not None and int(match[2]) >= commit:
                    first, last = int(match[1]), int(match[2])
                    yield first, last, layout.event_segment(first, last)

    async def _segment(self, path: str) -> list[dict[str, Any]]:
        cached = self._segments.get(path)
        if cached is None:
            data = await self._driver.get(path)
            cached = [json.loads(line) for line in data.splitlines() if line]
            self._segments[path] = cached
            while len(self._segments) > 4:
                self._segments.popitem(last=False)
        return cached

    # -- compaction and retention --------------------------------------------------------

    async def maintain(self, compact_after: float, retention: float) -> tuple[int, int]:
        """Compact commits older than `compact_after` into daily segments and delete
        events older than `retention` (0: neither). Run by one replica at a time (a
        lease); safe beside writers and readers. Returns (commits compacted, deleted)."""
        now = self._clock()
        head = await self.scan_head(0)
        compacted = await self._compact(now - compact_after, head) if compact_after > 0 else 0
        deleted = await self._expire(now - retention, head) if retention > 0 else 0
        return compacted, deleted

    async def _compact(self, before: float, head: int) -> int:
        """Segments are written before the commits they hold are deleted, so a reader
        always finds each commit in one place or the other (or both)."""
        compacted = 0
        for block in await self._blocks(None):
            prefix = layout.event_block(block)
            covered = [
                (first, last)
                async for first, last, _ in self._segment_ranges(block * layout.EVENT_BLOCK)
                if first // layout.EVENT_BLOCK == block
            ]
            run: list[dict[str, Any]] = []
            run_day, run_bytes = "", 0
            for number in await self._commit_names(prefix, None):
                if number >= head:
                    break
                if any(first <= number <= last for first, last in covered):
                    with contextlib.suppress(PathNotFound):  # left by a crashed compaction
                        await self._driver.delete(layout.event_commit(number))
                    continue
                try:
                    data = await self._driver.get(layout.event_commit(number))
                except PathNotFound:
                    continue
                record = json.loads(data)
                moment = _newest(record)
                if moment >= before:
                    break
                day = datetime.fromtimestamp(moment, UTC).strftime("%Y%m%d")
                if run and (day != run_day or run_bytes + len(data) > SEGMENT_MAX_BYTES):
                    compacted += await self._write_segment(run)
                    run, run_bytes = [], 0
                run.append(record)
                run_day, run_bytes = day, run_bytes + len(data)
            if run:
                compacted += await self._write_segment(run)
        return compacted

    async def _write_segment(self, records: list[dict[str, Any]]) -> int:
        first, last = records[0]["commit"], records[-1]["commit"]
        body = b"".join(_encode(record) + b"\n" for record in records)
        with contextlib.suppress(AlreadyExists):
            await self._driver.put(layout.event_segment(first, last), body, if_absent=True)
        for record in records:
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(layout.event_commit(record["commit"]))
        return len(records)

    async def _expire(self, before: float, head: int) -> int:
        deleted = 0
        async for first, last, path in self._segment_ranges(0):
            records = await self._segment(path)
            if last < head and records and _newest(records[-1]) < before:
                await self._driver.delete(path)
                self._segments.pop(path, None)
                deleted += last - first + 1
        for block in await self._blocks(None):
            for number in await self._commit_names(layout.event_block(block), None):
                if number >= head:
                    return deleted
                live = await self._live(number)
                if live is None:
                    continue
                if _newest({"events": live}) >= before:
                    return deleted
                with contextlib.suppress(PathNotFound):
                    await self._driver.delete(layout.event_commit(number))
                deleted += 1
        return deleted


async def maintain_forever(events: EventLog, driver: Driver, settings: EventSettings) -> None:
    """Compaction and retention now and then, by one replica at a time (a lease)."""
    interval = settings.maintenance_interval_seconds
    if interval <= 0 or (settings.compact_after_seconds <= 0 and settings.retention_seconds <= 0):
        return
    lease = Lease(driver, "events-maintenance", ttl=max(60.0, 2.0 * interval))
    while True:
        await asyncio.sleep(interval)
        try:
            if await lease.acquire():
                compacted, deleted = await events.maintain(
                    settings.compact_after_seconds, settings.retention_seconds
                )
                if compacted or deleted:
                    log.info(
                        "event log maintained",
                        extra={"compacted": compacted, "deleted": deleted},
                    )
        except Exception:
            log.exception("event log maintenance failed")


def _newest(record: dict[str, Any]) -> float:
    """The time of a commit's newest event (seconds since the epoch)."""
    times = [datetime.fromisoformat(event["time"]).timestamp() for event in record["events"]]
    return max(times, default=0.0)
