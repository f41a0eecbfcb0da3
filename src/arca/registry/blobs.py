"""Blobs: content shared by every repository, visible to one through its link.

A blob's data is written once under `blobs/` (deduplicated across repositories) and
only after its digest was verified; a repository sees it through a `_layers` link.
Its `meta` records size and both digests (sha256, blake3) so the CBOR artifact view
and scrub never have to guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO

import cbor2

from arca.errors import BlobUnknown, RangeNotSatisfiable
from arca.formats.digest import Digest, MultiHasher
from arca.registry.events import BlobUnlinked, Publisher
from arca.registry.reuse import Claim, Reuse
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, InvalidOffset, PathNotFound


@dataclass(frozen=True, slots=True)
class BlobMeta:
    digest: Digest
    size: int
    sha256: Digest | None
    blake3: Digest | None
    created: float

    def encode(self) -> bytes:
        return bytes(
            cbor2.dumps(
                {
                    "digest": str(self.digest),
                    "size": self.size,
                    "sha256": str(self.sha256) if self.sha256 else None,
                    "blake3": str(self.blake3) if self.blake3 else None,
                    "created": self.created,
                },
                canonical=True,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> BlobMeta:
        raw = cbor2.loads(data)
        return cls(
            digest=Digest.parse(raw["digest"]),
            size=raw["size"],
            sha256=Digest.parse(raw["sha256"]) if raw.get("sha256") else None,
            blake3=Digest.parse(raw["blake3"]) if raw.get("blake3") else None,
            created=raw["created"],
        )


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as storage holds it: for GC and scrub, which walk every blob."""

    digest: Digest
    size: int
    modified: float
    """The later of its data's and its metadata's last write (a re-use touches meta)."""
    has_data: bool


class BlobStore:
    def __init__(
        self, driver: Driver, reuse: Reuse | None = None, events: Publisher | None = None
    ) -> None:
        self._driver = driver
        self._reuse = reuse or Reuse(driver, grace_seconds=3600)
        self._events = events or Publisher()

    async def stat(self, name: str, digest: Digest) -> BlobInfo:
        """The blob as this repository sees it; BLOB_UNKNOWN unless linked and present."""
        try:
            await self._driver.stat(layout.layer_link(name, digest))
            info = await self._driver.stat(layout.blob_data(digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None
        return BlobInfo(digest, info.size)

    async def claim(self, name: str, digest: Digest) -> BlobInfo:
        """`stat` for a client that will rely on the answer (HEAD): the link is
        claimed, so no collector removes it under a push (arca.registry.reuse)."""
        info = await self.stat(name, digest)
        if not (await self._reuse.claim([self.link_claim(name, digest)]))[0]:
            raise BlobUnknown(digest)
        return info

    def link_claim(self, name: str, digest: Digest) -> Claim:
        link = layout.layer_link(name, digest)

        async def touch() -> None:
            await self._driver.put(link, str(digest).encode())

        return Claim(link, touch, requires=(layout.blob_data(digest),))

    async def claim_data(self, digest: Digest) -> bool:
        """Whether the blob's data exists and stays (mounts and deduplication rely on it)."""
        return (await self._reuse.claim([self._data_claim(digest)]))[0]

    def _data_claim(self, digest: Digest) -> Claim:
        async def touch() -> None:
            # The data is immutable; its meta is rewritten instead (GC looks at both).
            meta = await self.recorded_meta(digest)
            if meta is None:
                meta = BlobMeta(digest, 0, None, None, time.time())
                with contextlib.suppress(PathNotFound):
                    size = (await self._driver.stat(layout.blob_data(digest))).size
                    meta = BlobMeta(digest, size, None, None, meta.created)
            await self._driver.put(layout.blob_meta(digest), meta.encode())

        return Claim(layout.blob_data(digest), touch)

    async def exists_anywhere(self, digest: Digest) -> bool:
        return await self._driver.exists(layout.blob_data(digest))

    async def read(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream blob content; the caller has already checked the repository's link."""
        try:
            async for chunk in self._driver.open_read(layout.blob_data(digest), offset, length):
                yield chunk
        except PathNotFound:
            raise BlobUnknown(digest) from None
        except InvalidOffset:
            raise RangeNotSatisfiable(f"offset {offset} is past the end of {digest}") from None

    async def read_all(self, digest: Digest) -> bytes:
        try:
            return await self._driver.get(layout.blob_data(digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None

    async def local_file(self, digest: Digest) -> BinaryIO | None:
        """The blob's content as an open local file (zero-copy sends), or None."""
        try:
            return await self._driver.local_file(layout.blob_data(digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None

    async def url_for(self, digest: Digest) -> str | None:
        return await self._driver.url_for(layout.blob_data(digest))

    async def link(self, name: str, digest: Digest) -> None:
        path, data = layout.layer_link(name, digest), str(digest).encode()
        await self._driver.put(path, data)
        await self._reuse.written(path, data)

    async def unlink(self, name: str, digest: Digest) -> None:
        try:
            await self._driver.delete(layout.layer_link(name, digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None
        await self._events.publish(BlobUnlinked(repository=name, digest=digest))

    async def is_linked(self, name: str, digest: Digest) -> bool:
        return await self._driver.exists(layout.layer_link(name, digest))

    async def links(self, name: str) -> AsyncIterator[tuple[Digest, float]]:
        """Every blob linked into repository `name`, with the link's last write time."""
        async for info in self._driver.walk(layout.layers(name)):
            digest = layout.parse_layer_link(name, info.path)
            if digest is not None:
                yield digest, info.modified

    async def shards(self) -> list[tuple[str, str]]:
        """(algorithm, two-hex shard) of every blob directory group, sorted: GC and
        scrub work shard by shard so their memory is a shard's, not the store's."""
        found = []
        async for algorithm in self._driver.list(layout.blob_algorithms()):
            async for shard in self._driver.list(layout.blob_shards(algorithm)):
                found.append((algorithm, shard))
        return found

    async def in_shard(self, algorithm: str, shard: str) -> AsyncIterator[StoredBlob]:
        """Every blob of one shard (a blob with metadata but no data too, so GC can
        clear what a crash left half-written)."""
        seen: dict[Digest, StoredBlob] = {}
        async for info in self._driver.walk(layout.blob_shard(algorithm, shard)):
            parsed = layout.parse_blob_object(info.path)
            if parsed is None:
                continue
            digest, kind = parsed
            known = seen.get(digest)
            size = info.size if kind == "data" else (known.size if known else 0)
            modified = max(info.modified, known.modified if known else 0.0)
            has_data = kind == "data" or (known is not None and known.has_data)
            seen[digest] = StoredBlob(digest, size, modified, has_data)
        for blob in sorted(seen.values(), key=lambda blob: blob.digest.hex):
            yield blob

    async def put_small(self, data: bytes, digest: Digest) -> None:
        """Store a small verified blob (a manifest) from memory; a no-op when present."""
        meta, created = await self.put_small_data(data, digest)
        await self.record_meta(meta, look_first=not created)

    async def put_small_data(self, data: bytes, digest: Digest) -> tuple[BlobMeta, bool]:
        """`put_small` without the metadata, which the caller records (`record_meta`)
        while it goes on: a blob's data never needs its metadata (`meta` computes what
        is missing), and a manifest PUT need not wait for one more fsynced write.
        Also whether this call created the data (content never stored before: a
        manifest PUT then knows its revision is new too)."""
        path = layout.blob_data(digest)
        created = False
        if not await self._driver.exists(path) or not await self.claim_data(digest):
            with contextlib.suppress(AlreadyExists):
                await self._driver.put(path, data, if_absent=True)
                created = True
        sha256 = digest if digest.algorithm == "sha256" else Digest.of(data, "sha256")
        meta = BlobMeta(digest, len(data), sha256, Digest.of(data, "blake3"), time.time())
        return meta, created

    async def adopt(self, source: str, meta: BlobMeta, link: str | None = None) -> None:
        """Make verified upload data at `source` the blob `meta.digest`, and link it
        into repository `link` if given.

        Data already present wins (deduplication): identical by digest, and readers
        may be streaming it. Otherwise a move, atomic on every driver we ship. The
        metadata and the link are written once the data is in place, at the same
        time: neither needs the other (a link without metadata serves the blob,
        metadata without a link shows nothing), so their fsyncs share the disk's
        flushes instead of waiting one for the other. Both are done, or failed, when
        this returns.
        """
        target = layout.blob_data(meta.digest)
        if await self._driver.exists(target) and await self.claim_data(meta.digest):
            await self._driver.delete(source)
        else:
            await self._driver.move(source, target)
        if link is None:
            await self._write_meta_if_absent(meta)
            return
        outcomes = await asyncio.gather(
            self._write_meta_if_absent(meta), self.link(link, meta.digest), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def record_meta(self, meta: BlobMeta, *, look_first: bool = False) -> None:
        """Record `meta` for a verified blob unless metadata is recorded already.
        `look_first`: the data was stored before, so its metadata most likely is too:
        one `exists` instead of a refused create-only write (on a filesystem a whole
        fsynced write, then a failed link)."""
        if look_first and await self._driver.exists(layout.blob_meta(meta.digest)):
            return
        await self._write_meta_if_absent(meta)

    async def recorded_meta(self, digest: Digest) -> BlobMeta | None:
        """The metadata as recorded, without computing anything missing."""
        try:
            return BlobMeta.decode(await self._driver.get(layout.blob_meta(digest)))
        except PathNotFound:
            return None

    async def meta(self, digest: Digest) -> BlobMeta:
        """The blob's metadata, computing what is missing (blake3 after a resumed upload)."""
        meta = await self.recorded_meta(digest)
        if meta is None:
            try:
                size = (await self._driver.stat(layout.blob_data(digest))).size
            except PathNotFound:
                raise BlobUnknown(digest) from None
            meta = BlobMeta(digest, size, None, None, time.time())
        if meta.sha256 is None or meta.blake3 is None:
            meta = await self._complete_meta(meta)
        return meta

    async def _complete_meta(self, meta: BlobMeta) -> BlobMeta:
        hasher = MultiHasher.of("sha256", "blake3")
        async for chunk in self.read(meta.digest):
            await asyncio.to_thread(hasher.update, chunk)
        digests = hasher.digests()
        full = BlobMeta(meta.digest, meta.size, digests["sha256"], digests["blake3"], meta.created)
        await self._driver.put(layout.blob_meta(meta.digest), full.encode())
        return full

    async def _write_meta_if_absent(self, meta: BlobMeta) -> None:
        with contextlib.suppress(AlreadyExists):
            await self._driver.put(layout.blob_meta(meta.digest), meta.encode(), if_absent=True)
