"""The per-repository artifact index: newest-first listings without reading manifests.

Each artifact is a few small objects whose names sort newest-first
(`layout.index_key`: inverted creation time, then digest), all holding the same
JSON `IndexEntry`:

- `_index/entries/<key>`: every artifact;
- `_index/labels/<label>/<value>/<key>`: one per label, so a label filter is a
  listing of its own prefix, as cheap as an unfiltered one;
- `_index/digests/<alg>-<hex>`: found by digest, so a delete knows what to remove.

A push writes its artifact's objects and a delete removes them: no object is shared
between artifacts, so replicas pushing at once cannot overwrite each other's entries
(no read-modify-write of a common list). A page is one `list(prefix, start_after=
cursor)` and one `get` per entry read, plus one `get` per distinct tag on the page
(tags are hints, checked against the tag store, which is the truth; they are updated
under a per-repository lock, see `_serialized`, taken once per batch of concurrent
pushes, see `manifest_stored`). When a second
filter narrows the first, at most `SCAN_LIMIT` entries are read per request; the
page may then hold fewer than `limit` entries and still carry a cursor.

The labels of an entry are the artifact's pushed labels with its label artifacts
applied (arca.formats.labels): a label artifact has only its `_index/digests/` object
(it is no artifact of its own in listings), and its push or delete refolds its
subject's entry from the subject's referrers. A rebuild folds the same way.

The index is derived data: `rebuild` rewrites it from the manifests in storage, and a
follower's failure (logged by the event Publisher) is repaired the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass

from arca.control.entries import LABEL_KEY, MAX_TAG_HINTS, IndexEntry, merge_tags
from arca.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    ParameterInvalid,
)
from arca.formats.artifact import created_from_annotations, labels_from_annotations
from arca.formats.digest import Digest
from arca.formats.labels import LABELS_ARTIFACT_TYPE, LabelChange, change_from_descriptor
from arca.formats.labels import fold as fold_labels
from arca.formats.manifest import Manifest, parse_manifest
from arca.formats.mediatypes import is_index_media_type
from arca.registry.blobs import BlobStore
from arca.registry.catalog import Catalog
from arca.registry.events import DomainEvent, ManifestDeleted, ManifestPushed, TagDeleted
from arca.registry.manifests import ManifestStore
from arca.registry.referrers import ReferrerStore
from arca.registry.tags import TagStore, repository_exists
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound

log = logging.getLogger(__name__)

SCAN_LIMIT = 1000
"""Entries read per request at most, whatever the filters: the storage-read bound."""
_REFOLD_ATTEMPTS = 5
"""Refolds of one label change at most while other replicas keep changing the labels."""


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Creation times to keep, inclusive, in whole seconds since the epoch (None: open)."""

    since: int | None = None
    until: int | None = None

    def start_after(self, cursor: str | None) -> str | None:
        """Where a listing starts: after the cursor, and past everything newer than `until`
        (keys hold the inverted time first, so newer artifacts sort first)."""
        if self.until is None:
            return cursor
        floor = layout.index_key_time(self.until)
        return floor if cursor is None or cursor < floor else cursor

    def past(self, key: str) -> bool:
        """Whether `key` and every key after it are older than `since`."""
        if self.since is None:
            return False
        return key[:12] > layout.index_key_time(self.since)


EVERY_TIME = TimeWindow()


@dataclass(frozen=True, slots=True)
class IndexPage:
    entries: list[IndexEntry]
    cursor: str | None
    """Pass back as `cursor` for the next page; None when there is nothing after."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """A push waiting for the next batch of its repository's index writes."""

    digest: Digest
    manifest: Manifest
    tags: tuple[str, ...]
    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class RebuildReport:
    name: str
    entries: int
    removed: int


class ArtifactIndex:
    """Keeps the index (an `EventSink` following the registry) and answers listings."""

    def __init__(
        self,
        driver: Driver,
        blobs: BlobStore,
        tags: TagStore,
        manifests: ManifestStore,
        referrers: ReferrerStore | None = None,
    ) -> None:
        self._driver = driver
        self._blobs = blobs
        self._tags = tags
        self._manifests = manifests
        self._referrers = referrers or ReferrerStore(driver)
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, list[_Pending]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    # -- EventSink ----------------------------------------------------------------------

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Follow the registry's changes (a follower: a failure is logged, and repaired
        by `rebuild`)."""
        for event in events:
            if isinstance(event, ManifestPushed) and event.manifest is not None:
                await self.manifest_stored(
                    event.repository, event.digest, event.manifest, event.tags
                )
            elif isinstance(event, ManifestDeleted):
                await self.manifest_deleted(event.repository, event.digest)
            elif isinstance(event, TagDeleted):
                await self.tag_deleted(event.repository, event.tag, event.digest)

    async def manifest_stored(
        self, name: str, digest: Digest, manifest: Manifest, tags: tuple[str, ...]
    ) -> None:
        """Index one pushed manifest; returns once its entry is written.

        Pushes to one repository are written in batches (group commit): what arrives
        while a batch is being written waits for the next one, which takes the
        repository's lock once and writes every entry in it at the same time, the
        tags of pushes of the same manifest merged into one write. So 8 clients
        pushing to one repository cost one lock and one round of (concurrent) writes
        per batch instead of a lock and a round of writes each, one after the other.
        """
        if manifest.is_index:
            return
        if _is_label_artifact(manifest) and manifest.subject is not None:
            # Not an artifact of its own: only its digest object, then its subject refolded.
            entry = await self._entry_for(name, digest, manifest, ())
            await self._write(name, entry, None)
            await self.labels_changed(name, manifest.subject.digest)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(name, []).append(_Pending(digest, manifest, tags, future))
        if name not in self._writers:
            self._writers[name] = asyncio.create_task(self._drain(name))
        # A cancelled request does not cancel the batch: its push happened.
        await asyncio.shield(future)

    async def _drain(self, name: str) -> None:
        batch: list[_Pending] = []
        try:
            while batch := self._pending.pop(name, []):
                by_digest: dict[Digest, list[_Pending]] = {}
                for pending in batch:
                    by_digest.setdefault(pending.digest, []).append(pending)
                try:
                    async with self._serialized(name):
                        outcomes = await asyncio.gather(
                            *(self._store(name, same) for same in by_digest.values()),
                            return_exceptions=True,
                        )
                except Exception as error:  # the lock itself failed
                    outcomes = [error] * len(by_digest)
                for same, outcome in zip(by_digest.values(), outcomes, strict=True):
                    for pending in same:
                        if pending.future.done():
                            continue
                        if isinstance(outcome, BaseException):
                            pending.future.set_exception(outcome)
                        else:
                            pending.future.set_result(None)
        finally:
            # No await between the empty queue and this: a push queued from now on
            # starts a new drainer.
            del self._writers[name]
            for pending in batch:  # cancelled mid-batch (shutdown): nobody waits forever
                if not pending.future.done():
                    pending.future.set_exception(RuntimeError("index writer stopped"))

    async def _store(self, name: str, pushes: list[_Pending]) -> None:
        """Write one manifest's entry for every push of it in a batch (under the lock)."""
        tags: tuple[str, ...] = ()
        for push in pushes:
            tags = merge_tags(tags, push.tags)
        digest, manifest = pushes[0].digest, pushes[0].manifest
        known = await self.entry(name, digest)
        # A re-push keeps the labels already folded (no referrer listing needed).
        entry = await self._entry_for(name, digest, manifest, tags, fold=known is None)
        if known is not None:
            entry = dataclasses.replace(
                entry, tags=merge_tags(known.tags, tags), labels=known.labels
            )
            if known == entry:
                return  # the same push again
        await self._write(name, entry, known)

    async def manifest_deleted(self, name: str, digest: Digest) -> None:
        known = await self.entry(name, digest)
        if known is None:
            return
        await _delete_all(self._driver, _entry_paths(name, known))
        with suppress(PathNotFound):
            await self._driver.delete(layout.index_digest(name, digest))
        if _is_label_entry(known) and known.subject is not None:
            await self.labels_changed(name, known.subject)

    async def labels_changed(self, name: str, digest: Digest) -> IndexEntry | None:
        """Refold the labels of `digest`'s entry from its label artifacts; the entry
        (None when the artifact is not indexed, e.g. not pushed yet).

        Where the driver has no lock (S3), another replica may store a label
        artifact after this refold read them and write its own refold before this
        one's: so after writing, the label artifacts are read again, and the entry
        refolded until it was folded from all of them. The last writer always checks
        after its write, so the entry ends folded from every stored change."""
        async with self._serialized(name):
            entry: IndexEntry | None = None
            for _ in range(_REFOLD_ATTEMPTS):
                entry, folded = await self._refold(name, digest)
                if folded is None:
                    return entry
                if {c.digest for c in await self.label_changes(name, digest)} == folded:
                    return entry
            log.warning(
                "labels kept changing while refolded; `arca index rebuild` folds them",
                extra={"repository": name, "digest": str(digest)},
            )
            return entry

    async def _refold(
        self, name: str, digest: Digest
    ) -> tuple[IndexEntry | None, set[Digest] | None]:
        """One refold: the entry written, and the label artifacts it was folded from
        (None when nothing was written)."""
        known = await self.entry(name, digest)
        if known is None:
            return None, None
        try:
            stored = await self._manifests.get(name, str(digest))
        except (ManifestUnknown, BlobUnknown):
            return known, None  # being deleted: its own delete drops the entry
        manifest = parse_manifest(stored.data, stored.revision.media_type)
        pushed = labels_from_annotations(dict(manifest.annotations or {}))
        changes = await self.label_changes(name, digest)
        entry = dataclasses.replace(known, labels=fold_labels(pushed, changes))
        # Every value the entry may ever have been listed under: a refold killed half
        # way (the digest object written, listings not), or a replica's older refold
        # written over this one's, is finished here.
        ever = {*pushed.items(), *known.labels.items()}
        ever.update(item for change in changes for item in change.set.items())
        await self._write(name, entry, known)
        stale = {layout.index_label_entry(name, k, v, known.key) for k, v in ever}
        await _delete_all(self._driver, stale - set(_entry_paths(name, entry)))
        return entry, {change.digest for change in changes}

    async def label_changes(self, name: str, digest: Digest) -> list[LabelChange]:
        """Every label artifact of `digest` in `name`, from its referrer entries."""
        changes: list[LabelChange] = []
        last: str | None = None
        while True:
            descriptors, last = await self._referrers.page(
                name, digest, LABELS_ARTIFACT_TYPE, SCAN_LIMIT, last
            )
            changes += [c for d in descriptors if (c := change_from_descriptor(d)) is not None]
            if last is None:
                return changes

    async def tag_deleted(self, name: str, tag: str, digest: Digest) -> None:
        async with self._serialized(name):
            known = await self.entry(name, digest)
            if known is not None and tag in known.tags:
                entry = known.with_tags(tuple(t for t in known.tags if t != tag))
                await self._write(name, entry, known)

    @contextlib.asynccontextmanager
    async def _serialized(self, name: str) -> AsyncIterator[None]:
        """Tag hints are read, merged and written back: one such update per repository
        at a time, in this process and, where the driver has a lock (the filesystem),
        across processes. S3 has none: two replicas tagging one manifest in the same
        instant can lose a hint (never an entry) until `arca index rebuild`."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock, contextlib.AsyncExitStack() as stack:
            with suppress(PathNotFound):  # repository gone: the write below finds out
                await stack.enter_async_context(self._driver.lock(layout.repository(name)))
            yield

    # -- queries ------------------------------------------------------------------------

    async def page(
        self,
        name: str,
        filters: Mapping[str, str],
        limit: int,
        cursor: str | None,
        window: TimeWindow = EVERY_TIME,
    ) -> IndexPage:
        """Up to `limit` entries matching every filter, newest first, after `cursor`,
        created within `window` (a range of keys: no entry outside it is read)."""
        check_filters(filters)
        if cursor is not None and not layout.INDEX_KEY.fullmatch(cursor):
            raise ParameterInvalid(f"invalid cursor {cursor[:100]!r}", {"cursor": cursor[:100]})
        if filters:
            label, value = next(iter(filters.items()))
            prefix = layout.index_label(name, label, value)

            def path_of(key: str) -> str:
                return layout.index_label_entry(name, label, value, key)
        else:
            prefix = layout.index_entries(name)

            def path_of(key: str) -> str:
                return layout.index_entry(name, key)

        found: list[IndexEntry] = []
        scanned = 0
        last: str | None = None
        keys = self._driver.list(prefix, start_after=window.start_after(cursor))
        try:
            async for key in keys:
                if window.past(key):
                    break
                if len(found) == limit or scanned == SCAN_LIMIT:
                    return IndexPage(await self._checked(name, found), last)
                last, scanned = key, scanned + 1
                entry = await self._read(path_of(key))
                if entry is not None and entry.matches(filters):
                    found.append(entry)
        finally:
            await _close(keys)
        if not found and cursor is None and not await repository_exists(self._driver, name):
            raise NameUnknown(name)
        return IndexPage(await self._checked(name, found), None)

    async def entries(
        self, name: str, filters: Mapping[str, str], window: TimeWindow = EVERY_TIME
    ) -> AsyncIterator[IndexEntry]:
        """Every matching entry, page after page (for deletes and bulk verification)."""
        cursor: str | None = None
        while True:
            page = await self.page(name, filters, SCAN_LIMIT, cursor, window)
            for entry in page.entries:
                yield entry
            if page.cursor is None:
                return
            cursor = page.cursor

    async def entry(self, name: str, digest: Digest) -> IndexEntry | None:
        """The entry of one manifest as stored (its tags unchecked), or None."""
        return await self._read(layout.index_digest(name, digest))

    async def digests_with_prefix(self, name: str, prefix: str, most: int = 2) -> list[Digest]:
        """Up to `most` indexed sha256 manifest digests of `name` starting with `prefix`
        (lowercase hex): one listing of the digest objects, from the prefix on."""
        found: list[Digest] = []
        start = f"sha256-{prefix}"
        # Names are `<alg>-<hex>`: every name from `start` on sorts after this one ('~'
        # sorts after every hex digit), and no name that sorts before `start` does.
        before = start[:-1] + chr(ord(start[-1]) - 1) + "~"
        keys = self._driver.list(layout.index_digests(name), start_after=before)
        try:
            async for key in keys:
                if not key.startswith(start) or len(found) == most:
                    break
                found.append(Digest.parse(key.replace("-", ":", 1)))
        finally:
            await _close(keys)
        return found

    async def tags_of(self, name: str, digest: Digest) -> list[str]:
        """The tags on `digest`: the checked hints, or a scan of the tag store when
        the entry is missing or holds as many hints as it keeps."""
        entry = await self.entry(name, digest)
        if entry is None or len(entry.tags) >= MAX_TAG_HINTS:
            return sorted(await self._tags.pointing_at(name, digest))
        return sorted((await self._checked(name, [entry]))[0].tags)

    # -- rebuild ------------------------------------------------------------------------

    async def rebuild(self, name: str) -> RebuildReport:
        """Rewrite `name`'s index from its manifest revisions and tags; drop the rest."""
        tags_on: dict[Digest, list[str]] = {}
        async for tag, target in self._tags.all(name):
            tags_on.setdefault(target, []).append(tag)
        wanted = set()
        count = 0
        async for digest in self._revisions(name):
            entry = await self._rebuilt_entry(name, digest, tuple(tags_on.get(digest, ())))
            if entry is None:
                continue
            await self._write(name, entry, None)
            wanted.update(_entry_paths(name, entry))
            wanted.add(layout.index_digest(name, digest))
            count += 1
        stale = [info.path async for info in self._driver.walk(layout.index(name))]
        stale = [path for path in stale if path not in wanted]
        await _delete_all(self._driver, stale)
        return RebuildReport(name, count, len(stale))

    async def rebuild_all(self) -> list[RebuildReport]:
        names, _ = await Catalog(self._driver).page(sys.maxsize, None)
        return [await self.rebuild(name) for name in names]

    async def _revisions(self, name: str) -> AsyncIterator[Digest]:
        async for algorithm in self._driver.list(layout.revisions(name)):
            async for encoded in self._driver.list(layout.revisions_of(name, algorithm)):
                try:
                    digest = Digest.parse(f"{algorithm}:{encoded}")
                except DigestInvalid:
                    continue  # not a revision arca wrote
                yield digest

    async def _rebuilt_entry(
        self, name: str, digest: Digest, tags: tuple[str, ...]
    ) -> IndexEntry | None:
        try:
            stored = await self._manifests.get(name, str(digest))
        except (ManifestUnknown, BlobUnknown):
            return None  # deleted while we walked, or its blob is gone
        if is_index_media_type(stored.revision.media_type):
            return None
        try:
            manifest = parse_manifest(stored.data, stored.revision.media_type)
        except ManifestInvalid:
            log.warning(
                "unparsable manifest left out of the index",
                extra={"repository": name, "digest": str(digest)},  # "name": a LogRecord field
            )
            return None
        return await self._entry_for(name, digest, manifest, tags)

    # -- storage ------------------------------------------------------------------------

    async def _entry_for(
        self,
        name: str,
        digest: Digest,
        manifest: Manifest,
        tags: tuple[str, ...],
        *,
        fold: bool = True,
    ) -> IndexEntry:
        first_seen = 0.0
        if created_from_annotations(dict(manifest.annotations or {})) is None:
            meta = await self._blobs.recorded_meta(digest)
            first_seen = time.time() if meta is None else meta.created
        entry = IndexEntry.from_manifest(digest, manifest, tags, first_seen)
        if not fold or _is_label_artifact(manifest):
            return entry
        changes = await self.label_changes(name, digest)
        if not changes:
            return entry
        return dataclasses.replace(entry, labels=fold_labels(entry.labels, changes))

    async def _write(self, name: str, entry: IndexEntry, previous: IndexEntry | None) -> None:
        """The digest object first, so a delete can always find what may exist.

        Then the manifest is looked for again: if a delete (on any replica) removed it
        meanwhile, its index update may have run before these objects existed, so they go.
        Whichever order the two interleave in, no entry outlives its manifest.
        """
        data = entry.encode()
        await self._driver.put(layout.index_digest(name, entry.digest), data)
        paths = _entry_paths(name, entry)
        await asyncio.gather(*(self._driver.put(path, data) for path in paths))
        if previous is not None:
            await _delete_all(self._driver, set(_entry_paths(name, previous)) - set(paths))
        if not await self._driver.exists(layout.revision_link(name, entry.digest)):
            await _delete_all(self._driver, [*paths, layout.index_digest(name, entry.digest)])

    async def _read(self, path: str) -> IndexEntry | None:
        try:
            return IndexEntry.decode(await self._driver.get(path))
        except PathNotFound:
            return None  # removed between list and get

    async def _checked(self, name: str, entries: list[IndexEntry]) -> list[IndexEntry]:
        """Entries with only the tags that still point at them (one read per distinct tag)."""
        targets: dict[str, Digest | None] = {}
        for tag in {tag for entry in entries for tag in entry.tags}:
            try:
                targets[tag] = await self._tags.resolve(name, tag)
            except ManifestUnknown:
                targets[tag] = None
        return [
            entry.with_tags(tuple(t for t in entry.tags if targets[t] == entry.digest))
            for entry in entries
        ]


def check_filters(filters: Mapping[str, str]) -> None:
    for label in filters:
        if not LABEL_KEY.fullmatch(label):
            raise ParameterInvalid(
                f"invalid label key {label[:130]!r}: a letter or digit, then letters, digits,"
                " '.', '_' or '-', at most 128 characters",
                {"label": label[:130]},
            )


def _is_label_artifact(manifest: Manifest) -> bool:
    return manifest.artifact_type == LABELS_ARTIFACT_TYPE and manifest.subject is not None


def _is_label_entry(entry: IndexEntry) -> bool:
    return entry.artifact_type == LABELS_ARTIFACT_TYPE and entry.subject is not None


def _entry_paths(name: str, entry: IndexEntry) -> list[str]:
    """A label artifact has no listing objects, only its digest object."""
    if _is_label_entry(entry):
        return []
    return [
        layout.index_entry(name, entry.key),
        *(
            layout.index_label_entry(name, label, value, entry.key)
            for label, value in entry.labels.items()
        ),
    ]


async def _delete_all(driver: Driver, paths: Iterable[str]) -> None:
    for path in paths:
        with suppress(PathNotFound):
            await driver.delete(path)


async def _close(iterator: AsyncIterator[str]) -> None:
    """Close a listing left early, so a backend's paging stops now rather than at GC."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
