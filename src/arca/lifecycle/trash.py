"""The trash: what a collector swept, kept restorable for `[trash] retention_seconds`.

A swept object is moved (never copied then deleted by hand) to
`trash/<run_id>/<item>/<n>` beside a record of what it was, when and why it was
swept. The record is written before the move, so a collector killed between the two
leaves a record whose objects are still in place: the next collector finishes the
move from its tombstone (arca.lifecycle.gc), and restore or purge of such an item
does what the record says with whatever is where.

Restore moves the objects back (unless something newer took their place) and
rewrites each small object, so its age starts again and the next collector run does
not sweep it at once. A manifest comes back with its blobs (and their metadata), its
referrer entry, and the tags that pointed at it when they were deleted, unless such
a tag now points elsewhere. Everything lives in storage, so a restore works after a
restart and from any replica.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import cbor2

from arca.errors import DigestInvalid, ManifestInvalid, ManifestUnknown, RegistryError
from arca.formats.digest import Digest
from arca.formats.manifest import parse_manifest
from arca.registry.events import DomainEvent, TagDeleted, TrashPurged
from arca.registry.manifests import Revision
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

log = logging.getLogger(__name__)

KINDS = ("revision", "layer", "blob")


@dataclass(frozen=True, slots=True)
class TrashRecord:
    run_id: str
    item: str
    kind: str
    """"revision" (a manifest in a repository), "layer" (a blob link), "blob" (data)."""
    name: str | None
    digest: Digest
    objects: tuple[str, ...]
    """Original paths; the n-th is stored as `trash_object(run_id, item, n)`."""
    size: int
    rule: str
    swept_at: float
    tags: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.run_id}.{self.item}"

    def encode(self) -> bytes:
        return bytes(cbor2.dumps(self.to_json(), canonical=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "item": self.item,
            "kind": self.kind,
            "name": self.name,
            "digest": str(self.digest),
            "objects": list(self.objects),
            "size": self.size,
            "rule": self.rule,
            "swept_at": self.swept_at,
            "tags": list(self.tags),
        }

    @classmethod
    def decode(cls, data: bytes) -> TrashRecord:
        raw = cbor2.loads(data)
        return cls(
            run_id=raw["run_id"],
            item=raw["item"],
            kind=raw["kind"],
            name=raw["name"],
            digest=Digest.parse(raw["digest"]),
            objects=tuple(raw["objects"]),
            size=raw["size"],
            rule=raw["rule"],
            swept_at=raw["swept_at"],
            tags=tuple(raw.get("tags", ())),
        )


def run_started(run_id: str) -> float | None:
    """When a run began, from its id (`arca.lifecycle.gc.new_run_id`), rounded down to
    the second; None for an id of another form (then its records are read)."""
    try:
        stamp = datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC).timestamp()


class TrashUnknown(Exception):
    """No trash item has this id or digest."""


class Trash:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._driver: Driver = registry.driver

    async def put(self, record: TrashRecord) -> TrashRecord:
        """Record, then move every object of `record` that is still in place."""
        taken = await self.take(record, {})
        assert taken is not None  # nothing is compared, so nothing is undone
        return taken

    async def take(self, record: TrashRecord, expected: Mapping[str, bytes]) -> TrashRecord | None:
        """Record, then take every object of `record` that is still in place.

        An object named in `expected` (a small one: revision, link, referrer entry,
        meta) is copied to the trash and then deleted only if it still holds exactly
        those bytes (`Driver.delete_if`); the others (blob data) are moved. If the
        first object (the one the candidate is; for a blob, its meta, taken before
        its data) holds other bytes by now, the item is undone and None returned:
        the object stays, and nothing of it is in the trash.
        """
        if record.kind == "revision" and record.name is not None:
            # The caller's tags too (retention names them before it untags), so a
            # record rewritten after a crash loses none the first attempt took.
            taken = await self._take_deleted_tags(record.name, record.digest)
            record = replace(record, tags=tuple(sorted({*record.tags, *taken})))
        await self._driver.put(layout.trash_record(record.run_id, record.item), record.encode())
        order = sorted(range(len(record.objects)), key=lambda i: record.objects[i] not in expected)
        for index in order:
            path = record.objects[index]
            stored = layout.trash_object(record.run_id, record.item, index)
            if path not in expected:
                with contextlib.suppress(PathNotFound):
                    await self._driver.move(path, stored)
                continue
            await self._driver.put(stored, expected[path])
            if (
                not await self._driver.delete_if(path, expected[path])
                and (index == 0 or record.kind == "blob")
                and await self._driver.exists(path)
            ):
                await self._undo(record)
                log.info(
                    "kept an object written again after its verdict",
                    extra={"path": path, "id": record.id},
                )
                return None
        return record

    async def _undo(self, record: TrashRecord) -> None:
        """Drop a trash item whose object stayed; remember its deleted tags again."""
        if record.kind == "revision" and record.name is not None:
            for tag in record.tags:
                await self._driver.put(layout.deleted_tag(record.name, tag, record.digest), b"")
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.trash_item(record.run_id, record.item))

    async def records(self, swept_before: float | None = None) -> AsyncIterator[TrashRecord]:
        """Every item in the trash, oldest run first; with `swept_before`, runs that
        started after it are skipped unread (their items were all swept later)."""
        async for run_id in self._driver.list(layout.trash()):
            started = run_started(run_id)
            if swept_before is not None and started is not None and started > swept_before:
                continue
            async for item in self._driver.list(layout.trash_run(run_id)):
                try:
                    yield TrashRecord.decode(
                        await self._driver.get(layout.trash_record(run_id, item))
                    )
                except (PathNotFound, KeyError, ValueError, DigestInvalid):
                    continue  # purged meanwhile, or half written by a killed collector

    async def restore(self, target: str) -> list[TrashRecord]:
        """Restore an item by id (`<run_id>.<item>`) or every item of a digest; a
        manifest brings back what it needs (its blobs, children and their links)."""
        by_digest: dict[Digest, list[TrashRecord]] = {}
        chosen: list[TrashRecord] = []
        async for record in self.records():
            by_digest.setdefault(record.digest, []).append(record)
            if record.id == target:
                chosen.append(record)
        if not chosen:
            try:
                digest = Digest.parse(target)
            except DigestInvalid:
                raise TrashUnknown(target) from None
            chosen = by_digest.get(digest, [])
        if not chosen:
            raise TrashUnknown(target)
        restored: list[TrashRecord] = []
        done: set[str] = set()
        pending = list(chosen)
        while pending:
            record = pending.pop()
            if record.id in done:
                continue
            # Data before the links and revisions that need it.
            needs = [r for r in by_digest.get(record.digest, []) if r.kind == "blob"]
            for blob in [*needs, record] if record.kind != "blob" else [record]:
                if blob.id not in done:
                    done.add(blob.id)
                    await self._restore_one(blob)
                    restored.append(blob)
            if record.kind == "revision" and record.name is not None:
                pending.extend(await self._needed_by(record, by_digest))
        for record in restored:
            if record.kind == "revision" and record.name is not None:
                await self._restore_tags(record)
        return restored

    async def purge(
        self, older_than: float, now: float, *, automatic: bool = False
    ) -> list[TrashRecord]:
        """Delete every item swept more than `older_than` seconds before `now`; one
        `trash.purged` event names them (`automatic`: a collector's retention purge)."""
        purged = []
        # A run's items were swept after it started (its id says when, to the
        # second), so the purge a collector does every run reads only old runs.
        async for record in self.records(swept_before=now - older_than):
            if record.swept_at <= now - older_than:
                with contextlib.suppress(PathNotFound):
                    await self._driver.delete(layout.trash_item(record.run_id, record.item))
                purged.append(record)
        if purged:
            await self._registry.events.publish(
                TrashPurged(
                    repository="",
                    items=tuple(record.id for record in purged[:1000]),
                    count=len(purged),
                    bytes=sum(record.size for record in purged),
                    older_than=older_than,
                    automatic=automatic,
                )
            )
        return purged

    async def _restore_one(self, record: TrashRecord) -> None:
        for index, path in enumerate(record.objects):
            stored = layout.trash_object(record.run_id, record.item, index)
            if not await self._driver.exists(stored):
                continue
            if path.endswith("/data"):
                # Content-addressed: what may have taken its place is the same bytes.
                if await self._driver.exists(path):
                    await self._driver.delete(stored)
                else:
                    await self._driver.move(stored, path)
                continue
            # Small objects are written back create-only: something newer that took
            # the place meanwhile (a push) wins, and the write starts the object's
            # age again (a move would keep the old time; the next run would sweep it).
            with contextlib.suppress(PathNotFound):
                data = await self._driver.get(stored)
                with contextlib.suppress(AlreadyExists):
                    await self._driver.put(path, data, if_absent=True)
                await self._driver.delete(stored)
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.trash_item(record.run_id, record.item))
        log.info(
            "restored from the trash",
            extra={"id": record.id, "kind": record.kind, "digest": str(record.digest)},
        )

    async def _needed_by(
        self, record: TrashRecord, by_digest: dict[Digest, list[TrashRecord]]
    ) -> list[TrashRecord]:
        """Trash items a restored manifest needs: its blobs' links and data, its
        children (which bring their own)."""
        assert record.name is not None
        try:
            data = await self._registry.blobs.read_all(record.digest)
            revision = Revision.decode(
                await self._driver.get(layout.revision_link(record.name, record.digest))
            )
            manifest = parse_manifest(data, revision.media_type)
        except (RegistryError, PathNotFound, ManifestInvalid, ValueError):
            return []
        wanted = {d.digest for d in manifest.blobs} | {d.digest for d in manifest.children}
        needed = []
        for digest in wanted:
            for other in by_digest.get(digest, []):
                if other.kind == "blob" or other.name == record.name:
                    needed.append(other)
        return needed

    async def _restore_tags(self, record: TrashRecord) -> None:
        assert record.name is not None
        for tag in record.tags:
            try:
                await self._registry.tags.resolve(record.name, tag)
                continue  # the tag exists again, maybe elsewhere: leave it
            except ManifestUnknown:
                pass
            await self._registry.tags.set(record.name, tag, record.digest)
        with contextlib.suppress(RegistryError):
            await self._registry.manifests.announce_restored(
                record.name, record.digest, record.tags
            )

    async def _take_deleted_tags(self, name: str, digest: Digest) -> tuple[str, ...]:
        """The tags deleted from this manifest (remembered by `DeletedTags`), which
        go into its trash record."""
        found = []
        async for info in self._driver.walk(layout.deleted_tags(digest)):
            parsed = layout.parse_deleted_tag(digest, info.path)
            if parsed is not None and parsed[0] == name:
                found.append(parsed[1])
                with contextlib.suppress(PathNotFound):
                    await self._driver.delete(info.path)
        return tuple(sorted(found))


class DeletedTags:
    """An event follower that remembers deleted tags, so a manifest restored from
    the trash comes back with them (tag deletes remove the tag's whole history)."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            if isinstance(event, TagDeleted):
                await self.tag_deleted(event.repository, event.tag, event.digest)

    async def tag_deleted(self, name: str, tag: str, digest: Digest) -> None:
        await self._driver.put(layout.deleted_tag(name, tag, digest), b"")


def describe(records: Iterable[TrashRecord]) -> list[dict[str, Any]]:
    return [record.to_json() for record in records]
