"""Online mark and sweep: pushes go on while a collector runs, on any replica.

One run, holding the collector lease (arca.storage.lease, named "gc"):

1. *recover*: finish what a killed collector left: a tombstone whose verdict is
   "doomed" is moved to the trash (unless written again after the verdict), any
   other tombstone is dropped.
2. *mark* at time T0: per repository, the live manifests are the tagged ones (all
   of them with `untagged = "keep"`), the children of live indexes, the referrers of
   live subjects, and every revision written within `grace_seconds`; live links are
   the blobs of live manifests and links written within the grace period. Live
   digests stream to one temporary file per blob shard; then each blob shard is
   compared with its file. What is left, older than T0 - grace, is a candidate;
   each candidate remembers which other candidates need it (an index its child, a
   manifest its layer links, a link its data).
3. *tombstone*: `gc/sweeping`, then a mark per candidate.
4. *sweep*, manifests before the links they use, links before data: for each
   candidate, keep it if a candidate that needs it was kept; else re-check its age
   (a push re-using it rewrote it, arca.registry.reuse), then create its verdict
   "doomed" create-only; a push that got there first wrote "rescued" and wins. A
   doomed object moves to the trash; then the tombstone goes.
5. *trash*: items older than `[trash] retention_seconds` are purged.

Every step is idempotent: a collector killed anywhere leaves tombstones that the
next one (after the lease expires) finishes or drops, then it marks afresh. The
argument that no object a push relies on is swept is in docs/gc.md.

Memory: a repository's revisions and links at a time, one shard of live digests at
a time, and the candidates (at most `max_candidates` per run; the rest wait for the
next run and count as live meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import cbor2

from arca.config import Settings
from arca.errors import ManifestInvalid, RegistryError
from arca.formats.digest import Digest
from arca.formats.manifest import parse_manifest
from arca.lifecycle.pins import Pins
from arca.lifecycle.trash import Trash, TrashRecord
from arca.registry.events import BlobUnlinked, GarbageCollected
from arca.registry.manifests import Revision
from arca.registry.registry import Registry
from arca.registry.reuse import DOOMED
from arca.storage import layout
from arca.storage.driver import AlreadyExists, PathNotFound
from arca.storage.lease import Lease, LeaseLost

log = logging.getLogger(__name__)

MAX_CANDIDATES = 100_000
LEASE_NAME = "gc"
"""One collector at a time: `layout.lease("gc")`."""
_BATCH = 32

Hook = Callable[[str], Awaitable[None]]
Progress = Callable[[str, int, int | None], None]
"""(phase, done, total or None) for progress bars."""


class CollectorBusy(Exception):
    """Another collector holds the lease."""


@dataclass(slots=True)
class Candidate:
    kind: str
    name: str | None
    digest: Digest
    objects: tuple[str, ...]
    size: int
    rule: str
    item: str = ""
    parents: list[int] = field(default_factory=list)
    outcome: str = ""
    reason: str = ""
    trash_id: str | None = None

    @property
    def path(self) -> str:
        return self.objects[0]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "digest": str(self.digest),
            "path": self.path,
            "size": self.size,
            "rule": self.rule,
        }
        if self.outcome == "kept":
            document["reason"] = self.reason
        if self.trash_id is not None:
            document["trash_id"] = self.trash_id
        return document


@dataclass
class Report:
    run_id: str
    dry_run: bool
    started: float
    grace_seconds: int
    untagged: str
    finished: float = 0.0
    swept: list[Candidate] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    live: Counter[str] = field(default_factory=Counter)
    recovered: int = 0
    trash_purged: int = 0
    uploads_open: int = 0
    deferred: int = 0

    lines: TextIO | None = field(default=None, repr=False, compare=False)
    """Where every object judged goes as one JSON line (`arca gc --report FILE`)."""

    @property
    def bytes_swept(self) -> int:
        return sum(candidate.size for candidate in self.swept)

    def note_live(
        self, kind: str, name: str | None, digest: Digest | str, reason: str, key: str = ""
    ) -> None:
        """Count a live object by reason; with `lines`, write it out too."""
        self.live[key or f"{kind} {reason}"] += 1
        self._line("live", kind, name, digest, reason)

    def note_deferred(self, kind: str, name: str | None, digest: Digest) -> None:
        self.deferred += 1
        self._line("live", kind, name, digest, "deferred: over the candidates of one run")

    def note_candidate(self, candidate: Candidate) -> None:
        if self.lines is None:
            return
        document = {"outcome": candidate.outcome or "gone", **candidate.to_json()}
        if candidate.outcome == "gone":
            document["reason"] = "removed meanwhile by another path"
        self.lines.write(json.dumps(document) + "\n")

    def start_lines(self) -> None:
        if self.lines is not None:
            header = {
                "run_id": self.run_id,
                "dry_run": self.dry_run,
                "started": self.started,
                "grace_seconds": self.grace_seconds,
                "untagged": self.untagged,
            }
            self.lines.write(json.dumps(header) + "\n")

    def _line(
        self, outcome: str, kind: str, name: str | None, digest: Digest | str, reason: str
    ) -> None:
        if self.lines is not None:
            document = {
                "outcome": outcome,
                "kind": kind,
                "name": name,
                "digest": str(digest),
                "reason": reason,
            }
            self.lines.write(json.dumps(document) + "\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "started": self.started,
            "finished": self.finished,
            "grace_seconds": self.grace_seconds,
            "untagged": self.untagged,
            "swept": [candidate.to_json() for candidate in self.swept],
            "kept": [candidate.to_json() for candidate in self.kept],
            "live": dict(sorted(self.live.items())),
            "bytes_swept": self.bytes_swept,
            "recovered": self.recovered,
            "trash_purged": self.trash_purged,
            "uploads_open": self.uploads_open,
            "deferred": self.deferred,
        }


def new_run_id(now: float) -> str:
    """Sortable by start time, unique across replicas."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}Z-{secrets.token_hex(3)}"


class Collector:
    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        *,
        hook: Hook | None = None,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.time,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        self._registry = registry
        self._driver = registry.driver
        self._settings = settings
        self._trash = Trash(registry)
        self._hook = hook
        self._progress = progress
        self._clock = clock
        self._max_candidates = max_candidates
        self.lease = Lease(self._driver, LEASE_NAME, settings.gc.lease_seconds, clock=clock)

    async def run(self, *, dry_run: bool = False, lines: TextIO | None = None) -> Report:
        """One collection; CollectorBusy if another collector runs. A dry run takes
        no lease and writes nothing: it reports what a real run would sweep now.

        `lines` receives a header, then one JSON line per object judged, as it is
        judged: every live object with its reason, every candidate swept, kept (and
        why) or gone. Memory does not grow with it (the report keeps counts)."""
        if dry_run:
            return await self._collect(dry_run=True, lines=lines)
        if not await self.lease.acquire():
            raise CollectorBusy("another collector holds the lease")
        async with self.lease.keep_renewed():
            return await self._collect(dry_run=False, lines=lines)

    async def _collect(self, *, dry_run: bool, lines: TextIO | None = None) -> Report:
        started = self._clock()
        gc = self._settings.gc
        report = Report(new_run_id(started), dry_run, started, gc.grace_seconds, gc.untagged)
        report.lines = lines
        report.start_lines()
        if not dry_run:
            report.recovered = await self.recover()
        with tempfile.TemporaryDirectory(prefix="arca-gc-") as scratch:
            candidates = await self._mark(report, started - gc.grace_seconds, scratch)
        await self._step("mark")
        for number, candidate in enumerate(candidates):
            candidate.item = f"{number:08d}"
        if not dry_run and candidates:
            await self._tombstone(report.run_id, candidates)
        await self._step("tombstone")
        await self._sweep(report, candidates, started - gc.grace_seconds, dry_run=dry_run)
        await self._step("sweep")
        if not dry_run:
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(layout.gc_sweeping())
            retention = self._settings.trash.retention_seconds
            purged = await self._trash.purge(retention, self._clock(), automatic=True)
            report.trash_purged = len(purged)
            await self._step("trash")
        report.finished = self._clock()
        if not dry_run:
            await self._driver.put(
                layout.gc_run(report.run_id), json.dumps(report.to_json()).encode()
            )
            if report.swept:
                await self._registry.events.publish(_event_of(report))
        log.info(
            "garbage collection finished",
            extra={
                "run_id": report.run_id,
                "dry_run": dry_run,
                "swept": len(report.swept),
                "kept": len(report.kept),
                "bytes_swept": report.bytes_swept,
            },
        )
        return report

    async def _step(self, name: str) -> None:
        if self._hook is not None:
            await self._hook(name)

    def _tick(self, phase: str, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(phase, done, total)

    # -- recover ------------------------------------------------------------------------

    async def recover(self) -> int:
        """Finish or drop the tombstones a killed collector left; how many."""
        count = 0
        marks = [
            info.path
            async for info in self._driver.walk(layout.gc_tombstones())
            if info.path.endswith("/mark")
        ]
        for mark in marks:
            count += 1
            try:
                raw = cbor2.loads(await self._driver.get(mark))
                candidate = _candidate_from_mark(raw)
            except (PathNotFound, KeyError, ValueError, RegistryError):
                with contextlib.suppress(PathNotFound):
                    await self._driver.delete(mark.rsplit("/", 1)[0])
                continue
            verdict_path = layout.gc_tombstone_verdict(candidate.path)
            try:
                verdict = await self._driver.get(verdict_path)
                decided_at = (await self._driver.stat(verdict_path)).modified
            except PathNotFound:
                verdict, decided_at = b"", 0.0
            if verdict == DOOMED and await self._unchanged_since(candidate, decided_at):
                await self._trash.put(_record(raw["run_id"], candidate, self._clock()))
                await self._announce(candidate)
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(layout.gc_tombstone(candidate.path))
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.gc_sweeping())
        if count:
            log.info("finished a killed collector's tombstones", extra={"count": count})
        return count

    async def _unchanged_since(self, candidate: Candidate, decided_at: float) -> bool:
        try:
            modified = await self._modified(candidate)
        except PathNotFound:
            return True  # moved already (or half): Trash.put moves what is left
        return modified <= decided_at

    # -- mark ---------------------------------------------------------------------------

    async def _mark(self, report: Report, cutoff: float, scratch: str) -> list[Candidate]:
        live = _LiveShards(scratch)
        candidates: list[Candidate] = []
        data_parents: dict[Digest, list[int]] = {}
        repositories = 0
        async for name in self._registry.catalog.repositories():
            await self._mark_repository(name, cutoff, report, live, candidates, data_parents)
            repositories += 1
            self._tick("mark repositories", repositories, None)
        live.close()
        shards = await self._registry.blobs.shards()
        for number, (algorithm, shard) in enumerate(shards):
            wanted = live.load(algorithm, shard)
            async for blob in self._registry.blobs.in_shard(algorithm, shard):
                if blob.digest.hex in wanted:
                    report.note_live("blob", None, blob.digest, "referenced")
                elif blob.modified >= cutoff:
                    report.note_live("blob", None, blob.digest, "within the grace period")
                elif len(candidates) >= self._max_candidates:
                    report.note_deferred("blob", None, blob.digest)
                else:
                    objects = (layout.blob_data(blob.digest), layout.blob_meta(blob.digest))
                    rule = "unreferenced blob" if blob.has_data else "metadata without data"
                    candidates.append(
                        Candidate(
                            "blob",
                            None,
                            blob.digest,
                            objects,
                            blob.size,
                            rule,
                            parents=data_parents.get(blob.digest, []),
                        )
                    )
            self._tick("mark blobs", number + 1, len(shards))
        async for session_id, _ in self._registry.uploads.book.open():  # their one owner
            report.uploads_open += 1
            report.note_live("upload", None, session_id, "open", "open upload session")
        report.live["open upload session"] += 0  # counted even when there are none
        return candidates

    async def _mark_repository(
        self,
        name: str,
        cutoff: float,
        report: Report,
        live_shards: _LiveShards,
        candidates: list[Candidate],
        data_parents: dict[Digest, list[int]],
    ) -> None:
        revisions: dict[Digest, tuple[Revision, float]] = {}
        async for revision, modified in self._registry.manifests.revisions(name):
            revisions[revision.digest] = (revision, modified)
        tagged = {digest async for _, digest in self._registry.tags.all(name)}
        uses: dict[Digest, tuple[list[Digest], list[Digest]]] = {}
        pending_reads = list(revisions.items())
        for start in range(0, len(pending_reads), _BATCH):
            batch = pending_reads[start : start + _BATCH]
            found = await asyncio.gather(
                *(self._uses(digest, revision.media_type) for digest, (revision, _) in batch)
            )
            for (digest, _), used in zip(batch, found, strict=True):
                uses[digest] = used
        referrers: dict[Digest, list[Digest]] = {}
        for digest, (revision, _) in revisions.items():
            if revision.subject is not None:
                referrers.setdefault(revision.subject, []).append(digest)

        pinned = await Pins(self._driver).pinned(self._registry, name)  # above every rule
        reasons: dict[Digest, str] = {}
        for digest, (_, modified) in revisions.items():
            if digest in pinned:
                reasons[digest] = "pinned"
            elif digest in tagged:
                reasons[digest] = "tagged"
            elif self._settings.gc.untagged == "keep":
                reasons[digest] = "untagged, kept by policy"
            elif modified >= cutoff:
                reasons[digest] = "within the grace period"
        pending = list(reasons)
        while pending:
            digest = pending.pop()
            for child in uses[digest][1]:
                if child in revisions and child not in reasons:
                    reasons[child] = "child of a kept index"
                    pending.append(child)
            for referrer in referrers.get(digest, []):
                if referrer not in reasons:
                    reasons[referrer] = "referrer of a kept subject"
                    pending.append(referrer)

        live_blobs: set[Digest] = set()
        for digest, reason in reasons.items():
            report.note_live("revision", name, digest, reason, f"manifest {reason}")
            live_blobs.update(uses[digest][0])
            live_shards.add(digest)

        index_of: dict[Digest, int] = {}
        for digest, (revision, _) in revisions.items():
            if digest in reasons:
                continue
            if len(candidates) >= self._max_candidates:
                report.note_deferred("revision", name, digest)
                live_shards.add(digest)
                live_blobs.update(uses[digest][0])
                continue
            objects = [layout.revision_link(name, digest)]
            if revision.subject is not None:
                objects.append(layout.referrer_entry(name, revision.subject, digest))
                rule = (
                    "referrer whose subject is gone"
                    if revision.subject not in revisions
                    else "referrer of an untagged subject"
                )
            else:
                rule = "untagged"
            index_of[digest] = len(candidates)
            data_parents.setdefault(digest, []).append(len(candidates))
            candidates.append(
                Candidate("revision", name, digest, tuple(objects), revision.size, rule)
            )
        # A candidate is kept when a candidate that needs it is kept (rescued).
        needed_by: dict[Digest, list[int]] = {}
        for digest, number in index_of.items():
            blobs, children = uses[digest]
            for child in children:
                if child in index_of:
                    candidates[index_of[child]].parents.append(number)
            for blob in blobs:
                needed_by.setdefault(blob, []).append(number)
            subject = revisions[digest][0].subject
            if subject is not None and subject in index_of:
                candidates[number].parents.append(index_of[subject])

        async for digest, modified in self._registry.blobs.links(name):
            if digest in live_blobs:
                report.note_live(
                    "layer", name, digest, "used by a kept manifest", "link used by a kept manifest"
                )
                live_shards.add(digest)
            elif modified >= cutoff:
                report.note_live(
                    "layer", name, digest, "within the grace period", "link within the grace period"
                )
                live_shards.add(digest)
            elif len(candidates) >= self._max_candidates:
                report.note_deferred("layer", name, digest)
                live_shards.add(digest)
            else:
                data_parents.setdefault(digest, []).append(len(candidates))
                candidates.append(
                    Candidate(
                        "layer",
                        name,
                        digest,
                        (layout.layer_link(name, digest),),
                        0,
                        "link no kept manifest uses",
                        parents=list(needed_by.get(digest, [])),
                    )
                )

    async def _uses(self, digest: Digest, media_type: str) -> tuple[list[Digest], list[Digest]]:
        """(blobs, child manifests) a manifest names; nothing if it cannot be read.

        Remembered per process (`PARSED`): a manifest's bytes never change under its
        digest, so a collector running every second reads and parses each manifest
        once, not once per run. What could not be read is not remembered."""
        known = PARSED.get(digest, media_type)
        if known is not None:
            return list(known[0]), list(known[1])
        try:
            data = await self._registry.blobs.read_all(digest)
            manifest = await asyncio.to_thread(parse_manifest, data, media_type)
        except (RegistryError, ManifestInvalid, ValueError):
            return [], []
        blobs = tuple(d.digest for d in manifest.blobs)
        children = tuple(d.digest for d in manifest.children)
        PARSED.put(digest, media_type, blobs, children)
        return list(blobs), list(children)

    # -- tombstone ----------------------------------------------------------------------

    async def _tombstone(self, run_id: str, candidates: list[Candidate]) -> None:
        await self._driver.put(layout.gc_sweeping(), run_id.encode())
        for start in range(0, len(candidates), _BATCH):
            batch = candidates[start : start + _BATCH]
            await asyncio.gather(
                *(
                    self._driver.put(
                        layout.gc_tombstone_mark(candidate.path), _mark_record(run_id, candidate)
                    )
                    for candidate in batch
                )
            )
            self._tick("tombstone", start + len(batch), len(candidates))

    # -- sweep --------------------------------------------------------------------------

    async def _sweep(
        self, report: Report, candidates: list[Candidate], cutoff: float, *, dry_run: bool
    ) -> None:
        order = _parents_first(candidates)
        done = 0
        for wave in order:
            for start in range(0, len(wave), _BATCH):
                batch = [candidates[number] for number in wave[start : start + _BATCH]]
                await asyncio.gather(
                    *(
                        self._decide(report.run_id, candidates, c, cutoff, dry_run=dry_run)
                        for c in batch
                    )
                )
                done += len(batch)
                self._tick("sweep", done, len(candidates))
        for candidate in candidates:
            if candidate.outcome == "swept":
                report.swept.append(candidate)
            elif candidate.outcome == "kept":
                report.kept.append(candidate)
            report.note_candidate(candidate)

    async def _decide(
        self,
        run_id: str,
        candidates: list[Candidate],
        candidate: Candidate,
        cutoff: float,
        *,
        dry_run: bool,
    ) -> None:
        kept_parent = next(
            (candidates[p] for p in candidate.parents if candidates[p].outcome == "kept"), None
        )
        if kept_parent is not None:
            self._keep(candidate, f"needed by a kept {kept_parent.kind} {kept_parent.digest}")
        else:
            try:
                modified = await self._modified(candidate)
                expected = await self._small_objects(candidate)
            except PathNotFound:
                modified, expected = None, {}
            if modified is None:
                candidate.outcome = "gone"  # removed meanwhile (a delete, another path)
            elif modified >= cutoff:
                self._keep(candidate, "re-used since the mark")
            elif dry_run:
                candidate.outcome = "swept"
            else:
                await self._doom(run_id, candidate, expected)
        if not dry_run:
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(layout.gc_tombstone(candidate.path))

    async def _small_objects(self, candidate: Candidate) -> dict[str, bytes]:
        """The bytes of the candidate's small objects as judged now (its revision or
        link, its referrer entry, a blob's meta): the trash deletes each only if it
        still holds them (`delete_if`), so a write after the verdict is never lost."""
        found: dict[str, bytes] = {}
        for path in candidate.objects:
            if candidate.kind == "blob" and path == candidate.path:
                continue  # blob data: immutable and large; its meta stands for it
            try:
                found[path] = await self._driver.get(path)
            except PathNotFound:
                if path == candidate.path:
                    raise
        return found

    async def _doom(self, run_id: str, candidate: Candidate, expected: dict[str, bytes]) -> None:
        if not self.lease.held:  # a quarter of the term must remain
            raise LeaseLost("the collector lease is about to expire; stopping the sweep")
        await self._step("verdict")
        try:
            await self._driver.put(
                layout.gc_tombstone_verdict(candidate.path), DOOMED, if_absent=True
            )
        except AlreadyExists:
            self._keep(candidate, "rescued by a push")
            return
        record = await self._trash.take(_record(run_id, candidate, self._clock()), expected)
        await self._step("trash-item")
        if record is None:
            self._keep(candidate, "written again after the verdict")
            return
        await self._announce(candidate)
        candidate.outcome = "swept"
        candidate.trash_id = record.id

    async def _announce(self, candidate: Candidate) -> None:
        """The per-repository event of a swept object (blob data has no repository:
        the run's `gc.swept` counts it)."""
        if candidate.name is None:
            return
        if candidate.kind == "revision":
            await self._registry.manifests.announce_deleted(candidate.name, candidate.digest)
        elif candidate.kind == "layer":
            await self._registry.events.publish(
                BlobUnlinked(repository=candidate.name, digest=candidate.digest, reason="gc")
            )

    @staticmethod
    def _keep(candidate: Candidate, reason: str) -> None:
        candidate.outcome = "kept"
        candidate.reason = reason

    async def _modified(self, candidate: Candidate) -> float:
        """Last write of the candidate (for blobs, of its data or its meta); raises
        PathNotFound if its first object is gone."""
        first = await self._driver.stat(candidate.path)
        modified = first.modified
        if candidate.kind == "blob":
            with contextlib.suppress(PathNotFound):
                modified = max(modified, (await self._driver.stat(candidate.objects[1])).modified)
        return modified


class ParsedManifests:
    """What each manifest names, by (digest, media type), least recently used first
    out; bounded by the digests it holds (a big index counts for its size)."""

    def __init__(self, max_digests: int = 500_000) -> None:
        self.max_digests = max_digests
        self._entries: OrderedDict[tuple[Digest, str], tuple[tuple[Digest, ...], ...]] = (
            OrderedDict()
        )
        self._held = 0
        self.hits = 0
        self.misses = 0

    def get(
        self, digest: Digest, media_type: str
    ) -> tuple[tuple[Digest, ...], tuple[Digest, ...]] | None:
        entry = self._entries.get((digest, media_type))
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end((digest, media_type))
        self.hits += 1
        return entry[0], entry[1]

    def put(
        self,
        digest: Digest,
        media_type: str,
        blobs: tuple[Digest, ...],
        children: tuple[Digest, ...],
    ) -> None:
        key = (digest, media_type)
        if key in self._entries:
            return
        size = 1 + len(blobs) + len(children)
        if size > self.max_digests:
            return
        self._entries[key] = (blobs, children)
        self._held += size
        while self._held > self.max_digests:
            _, (old_blobs, old_children) = self._entries.popitem(last=False)
            self._held -= 1 + len(old_blobs) + len(old_children)

    def clear(self) -> None:
        self._entries.clear()
        self._held = 0

    def __len__(self) -> int:
        return len(self._entries)


PARSED = ParsedManifests()
"""The process's one cache of parsed manifests: at most 500,000 digests (about 150
bytes each, so under 80 MiB; 10,000 five-blob manifests take 60,000)."""


class _LiveShards:
    """Live digests on disk, one file per blob shard, so memory holds one shard."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._files: dict[tuple[str, str], Any] = {}

    def add(self, digest: Digest) -> None:
        key = (digest.algorithm, digest.hex[:2])
        handle = self._files.get(key)
        if handle is None:
            handle = open(self._path(*key), "a", encoding="ascii")  # noqa: SIM115
            self._files[key] = handle
        handle.write(digest.hex + "\n")

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def load(self, algorithm: str, shard: str) -> set[str]:
        try:
            with open(self._path(algorithm, shard), encoding="ascii") as handle:
                return {line.rstrip("\n") for line in handle}
        except FileNotFoundError:
            return set()

    def _path(self, algorithm: str, shard: str) -> str:
        return os.path.join(self._directory, f"{algorithm}-{shard}")


def _parents_first(candidates: list[Candidate]) -> list[list[int]]:
    """Waves of candidate numbers, each after every parent of its members."""
    depth: dict[int, int] = {}

    def depth_of(number: int, seen: frozenset[int] = frozenset()) -> int:
        if number in depth:
            return depth[number]
        parents = [p for p in candidates[number].parents if p not in seen]
        value = 1 + max((depth_of(p, seen | {number}) for p in parents), default=-1)
        depth[number] = value
        return value

    waves: dict[int, list[int]] = {}
    for number in range(len(candidates)):
        waves.setdefault(depth_of(number), []).append(number)
    return [waves[level] for level in sorted(waves)]


def _mark_record(run_id: str, candidate: Candidate) -> bytes:
    return bytes(
        cbor2.dumps(
            {
                "run_id": run_id,
                "item": candidate.item,
                "kind": candidate.kind,
                "name": candidate.name,
                "digest": str(candidate.digest),
                "objects": list(candidate.objects),
                "size": candidate.size,
                "rule": candidate.rule,
            },
            canonical=True,
        )
    )


def _candidate_from_mark(raw: dict[str, Any]) -> Candidate:
    return Candidate(
        raw["kind"],
        raw["name"],
        Digest.parse(raw["digest"]),
        tuple(raw["objects"]),
        raw["size"],
        raw["rule"],
        item=raw["item"],
    )


def _event_of(report: Report) -> GarbageCollected:
    kinds = Counter(candidate.kind for candidate in report.swept)
    return GarbageCollected(
        repository="",
        run_id=report.run_id,
        manifests=kinds["revision"],
        links=kinds["layer"],
        blobs=kinds["blob"],
        bytes=report.bytes_swept,
        kept=len(report.kept),
    )


def _record(run_id: str, candidate: Candidate, now: float) -> TrashRecord:
    return TrashRecord(
        run_id=run_id,
        item=candidate.item,
        kind=candidate.kind,
        name=candidate.name,
        digest=candidate.digest,
        objects=candidate.objects,
        size=candidate.size,
        rule=candidate.rule,
        swept_at=now,
    )


async def collect_forever(registry: Registry, settings: Settings) -> None:
    """The server's collector: a run every `[gc] interval_seconds` on every replica;
    the lease makes all but one of them skip each round."""
    collector = Collector(registry, settings)
    while True:
        await asyncio.sleep(settings.gc.interval_seconds)
        try:
            await collector.run()
        except CollectorBusy:
            continue
        except LeaseLost:
            log.warning("garbage collection stopped: the lease expired under it")
        except Exception:
            log.exception("garbage collection failed")
