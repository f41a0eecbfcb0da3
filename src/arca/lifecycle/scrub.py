"""Scrub: re-hash every blob in storage; quarantine the ones whose bytes are wrong.

A blob's address is its digest (sha256 for nearly all), so that digest is the
authority. blake3 hashes about twice as fast, and a blob's `meta` records its blake3
when it was stored, so the fast path is: blake3 matches the recorded one, the blob is
good. Any mismatch (or no recorded blake3) is decided by the authoritative digest.

A corrupt blob's data is moved to `quarantine/<alg>/<hex>/data` beside a record of
what was found, and its meta is dropped: GET and HEAD then answer 404 `BLOB_UNKNOWN`
instead of wrong bytes, and a client pushing the blob again repairs it (the upload
finds no data under the digest and moves its own, verified, into place).

Scrub works shard by shard (`blobs/<alg>/<hh>`) and records the finished shards in
`scrub/progress` after each one, so a scrub that is stopped or killed resumes where
it was (`restart=True` starts over). Memory is one shard's listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arca.errors import BlobUnknown
from arca.formats.digest import Digest, MultiHasher
from arca.registry.blobs import StoredBlob
from arca.registry.events import BlobQuarantined
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.driver import PathNotFound

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
_INLINE_BYTES = 256 << 10


@dataclass(frozen=True, slots=True)
class Finding:
    digest: Digest
    size: int
    actual: Digest
    quarantined: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "size": self.size,
            "actual": str(self.actual),
            "quarantined": self.quarantined,
        }


@dataclass
class ScrubReport:
    started: float
    resumed_shards: int = 0
    finished: float = 0.0
    blobs: int = 0
    bytes: int = 0
    fast_path: int = 0
    corrupt: list[Finding] = field(default_factory=list)
    meta_repaired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": self.finished,
            "resumed_shards": self.resumed_shards,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "fast_path": self.fast_path,
            "meta_repaired": self.meta_repaired,
            "corrupt": [finding.to_json() for finding in self.corrupt],
            "ok": not self.corrupt,
        }


class Scrubber:
    def __init__(
        self,
        registry: Registry,
        *,
        progress: Progress | None = None,
        quarantine: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._driver = registry.driver
        self._progress = progress
        self._quarantine = quarantine
        self._clock = clock

    async def run(self, *, restart: bool = False) -> ScrubReport:
        report = ScrubReport(self._clock())
        done = set() if restart else await self._done_shards()
        report.resumed_shards = len(done)
        shards = await self._registry.blobs.shards()
        for number, (algorithm, shard) in enumerate(shards):
            key = f"{algorithm}/{shard}"
            if key in done:
                continue
            async for blob in self._registry.blobs.in_shard(algorithm, shard):
                if blob.has_data:
                    await self._check(blob, report)
            done.add(key)
            await self._driver.put(
                layout.scrub_progress(), json.dumps({"done": sorted(done)}).encode()
            )
            if self._progress is not None:
                self._progress("scrub", number + 1, len(shards))
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.scrub_progress())  # complete: next run starts over
        report.finished = self._clock()
        log.info(
            "scrub finished",
            extra={"blobs": report.blobs, "corrupt": len(report.corrupt), "bytes": report.bytes},
        )
        return report

    async def _done_shards(self) -> set[str]:
        try:
            return set(json.loads(await self._driver.get(layout.scrub_progress()))["done"])
        except (PathNotFound, KeyError, ValueError):
            return set()

    async def _check(self, blob: StoredBlob, report: ScrubReport) -> None:
        meta = await self._registry.blobs.recorded_meta(blob.digest)
        try:
            if meta is not None and meta.blake3 is not None:
                blake3, _ = await self._hash(blob.digest, "blake3")
                if blake3 == meta.blake3 and meta.size == blob.size:
                    report.blobs += 1
                    report.bytes += blob.size
                    report.fast_path += 1
                    return
            actual, size = await self._hash(blob.digest, blob.digest.algorithm)
        except BlobUnknown:
            return  # collected or quarantined meanwhile
        report.blobs += 1
        report.bytes += size
        if actual == blob.digest:
            if meta is not None and meta.blake3 is not None:
                # The bytes are right and the recorded blake3 is not: record it again.
                with contextlib.suppress(PathNotFound):
                    await self._driver.delete(layout.blob_meta(blob.digest))
                await self._registry.blobs.meta(blob.digest)
                report.meta_repaired += 1
            return
        quarantined = False
        if self._quarantine:
            await self._quarantine_blob(blob, actual)
            quarantined = True
            await self._registry.events.publish(
                BlobQuarantined(repository="", digest=blob.digest, actual=actual, size=blob.size)
            )
        report.corrupt.append(Finding(blob.digest, blob.size, actual, quarantined))
        log.error(
            "scrub found a corrupt blob",
            extra={"digest": str(blob.digest), "actual": str(actual), "quarantined": quarantined},
        )

    async def _hash(self, digest: Digest, algorithm: str) -> tuple[Digest, int]:
        hasher = MultiHasher.of(algorithm)
        async for chunk in self._registry.blobs.read(digest):
            if len(chunk) < _INLINE_BYTES:
                hasher.update(chunk)
            else:
                await asyncio.to_thread(hasher.update, chunk)
        return hasher.digests()[algorithm], hasher.size

    async def _quarantine_blob(self, blob: StoredBlob, actual: Digest) -> None:
        record = {
            "digest": str(blob.digest),
            "actual": str(actual),
            "size": blob.size,
            "found_at": self._clock(),
        }
        await self._driver.put(layout.quarantine_record(blob.digest), json.dumps(record).encode())
        with contextlib.suppress(PathNotFound):
            await self._driver.move(
                layout.blob_data(blob.digest), layout.quarantine_data(blob.digest)
            )
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.blob_meta(blob.digest))
