"""Upload sessions: POST opens, PATCH appends, PUT ?digest= closes, DELETE cancels.

A session is two objects in storage: `state` (repository, committed offset, the
serialised sha256 state, times) and `data`. After every request the sha256 state
is saved with the offset it covers, so any process can continue the session and
close it without re-reading the blob. blake3 (for blob metadata) cannot be
serialised; the process that received every byte keeps its hasher in memory and
records blake3 at close, otherwise metadata gets it lazily on first use
(docs/storage.md, "Digests of a blob").

What is kept about sessions has one owner each (arca.registry.upload_sessions): the
open sessions in storage (`SessionBook`, which GC and the purge ask), the per-session
locks (`SessionLocks`) and the blake3 shortcut (`Blake3Cache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from arca.errors import (
    BlobTooLarge,
    BlobUploadInvalid,
    BlobUploadUnknown,
    ChunkOutOfOrder,
    DigestInvalid,
)
from arca.formats.digest import Blake3Hasher, Digest, MultiHasher, ResumableHasher, new_hasher
from arca.registry.blobs import BlobMeta, BlobStore
from arca.registry.events import (
    BlobLinked,
    BlobUploaded,
    Publisher,
    UploadCancelled,
    UploadClosed,
    UploadPurged,
)
from arca.registry.upload_limits import OpenSessions
from arca.registry.upload_sessions import (
    Blake3Cache,
    SessionBook,
    SessionLocks,
    SessionState,
)

if TYPE_CHECKING:
    from arca.registry.quotas import Quotas
from arca.storage import layout
from arca.storage.driver import CHUNK_SIZE, Driver, FileWriter, InvalidOffset, PathNotFound

BLOCK_SIZE = 2 * CHUNK_SIZE
"""What a received request body is regrouped into for hashing and storing: each block
costs two thread hops (hash, write), so a 4 MiB layer is one block, not two."""


@dataclass(frozen=True, slots=True)
class UploadStatus:
    session_id: str
    offset: int


class UploadStore:
    def __init__(
        self,
        driver: Driver,
        blobs: BlobStore,
        *,
        max_blob_bytes: int = 0,
        sessions_per_repository: int = 0,
        events: Publisher | None = None,
    ) -> None:
        """`max_blob_bytes` and `sessions_per_repository` are the abuse limits
        (0: none): a blob is refused before a byte past the first would be stored."""
        self._driver = driver
        self._blobs = blobs
        self._events = events or Publisher()
        self.book = SessionBook(driver)
        """Which sessions are open (the garbage collector asks it)."""
        self._locks = SessionLocks(driver)
        self._blake3 = Blake3Cache()
        self._max_blob_bytes = max_blob_bytes
        self._open_sessions = OpenSessions(driver, sessions_per_repository)
        self.quotas: Quotas | None = None
        """Set by `Registry` when `[[quotas]]` are configured."""

    async def start(self, name: str) -> UploadStatus:
        """Open a chunked session: counted against the repository's session limit."""
        await self._open_sessions.admit(name)
        status = await self._begin(name)
        await self._open_sessions.opened(name, status.session_id)
        return status

    async def _begin(self, name: str) -> UploadStatus:
        session_id = uuid.uuid4().hex
        # The data object is created with the first bytes (`_open`): a session that
        # is closed at once (an empty blob, a monolithic PUT) costs one write less.
        now = time.time()
        state = SessionState(name, 0, ResumableHasher("sha256").state(), now, now)
        await self.book.begin(session_id, state)
        return UploadStatus(session_id, 0)

    async def status(self, name: str, session_id: str) -> UploadStatus:
        state = await self._load(name, session_id)
        return UploadStatus(session_id, state.offset)

    async def append(
        self,
        name: str,
        session_id: str,
        body: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> UploadStatus:
        """Append a chunk; `start` (from Content-Range) must equal the committed offset."""
        async with self._exclusive(session_id):
            state = await self._load(name, session_id)
            self._check_start(session_id, state, start)
            body = self._capped(body, state.offset, length)
            if self.quotas is not None:
                body = await self.quotas.capped(name, body, state.offset, length)
            writer, state = await self._open(session_id, state)
            state = await self._receive(session_id, state, writer, body, length)
            return UploadStatus(session_id, state.offset)

    async def finish(
        self,
        name: str,
        session_id: str,
        digest: Digest,
        body: AsyncIterator[bytes] | None = None,
        start: int | None = None,
        length: int | None = None,
    ) -> Digest:
        """Close the session: verify `digest`, publish the blob, link it, forget the session."""
        async with self._exclusive(session_id):
            state = await self._load(name, session_id)
            try:
                writer, state = await self._open(session_id, state)
            except _DataMissing:
                return await self._finish_published(
                    name, session_id, state, digest, body, start, length
                )
            try:
                if body is not None:
                    self._check_start(session_id, state, start)
                    body = self._capped(body, state.offset, length)
                    if self.quotas is not None and not await self._blobs.is_linked(name, digest):
                        body = await self.quotas.capped(name, body, state.offset, length)
                    state = await self._receive(
                        session_id, state, writer, body, length, closing=True
                    )
                if digest.algorithm == "sha256":
                    await self._verify(session_id, digest, _sha256_of(state), writer)
                new_bytes = await self._admit(name, digest, state.offset)
                await writer.commit()
            except DigestInvalid:
                raise  # `_verify` cancelled the writer and ended the session
            except BaseException:
                await writer.close()
                raise
            if digest.algorithm != "sha256":
                # Only sha256 state travels with a session; others re-read the data once.
                await self._verify(
                    session_id,
                    digest,
                    await self._rehash_committed(session_id, digest.algorithm),
                    None,
                )
            meta = BlobMeta(
                digest=digest,
                size=state.offset,
                sha256=_sha256_of(state),
                blake3=self._blake3.digest(session_id, state.offset),
                created=time.time(),
            )
            await self._blobs.adopt(layout.upload_data(session_id), meta, link=name)
            if new_bytes and self.quotas is not None:
                self.quotas.added(name, new_bytes)
            await self._forget(session_id)
            await self._events.publish(
                BlobUploaded(
                    repository=name, digest=digest, size=state.offset, session_id=session_id
                ),
                UploadClosed(
                    repository=name, session_id=session_id, digest=digest, size=state.offset
                ),
            )
            return digest

    async def monolithic(
        self, name: str, digest: Digest, body: AsyncIterator[bytes], length: int | None = None
    ) -> Digest:
        """POST ?digest=: a whole blob in one request (a session that lives one request,
        so not counted against the session limit)."""
        if self._max_blob_bytes and length is not None and length > self._max_blob_bytes:
            raise BlobTooLarge(length, self._max_blob_bytes)
        if length is not None:
            await self._admit(name, digest, length)  # before a session or a byte exists
        status = await self._begin(name)
        try:
            return await self.finish(name, status.session_id, digest, body, length=length)
        except BaseException:
            await self._forget(status.session_id)
            raise

    async def cancel(self, name: str, session_id: str) -> None:
        async with self._exclusive(session_id):
            await self._load(name, session_id)
            await self._forget(session_id)
            await self._events.publish(UploadCancelled(repository=name, session_id=session_id))

    async def mount(self, name: str, digest: Digest, source: str | None) -> bool:
        """Link an existing blob into `name`: from `source`, or from anywhere when None."""
        if (
            source is not None
            and source != name
            and not await self._blobs.is_linked(source, digest)
        ):
            return False
        if await self._blobs.exists_anywhere(digest) and await self._blobs.claim_data(digest):
            size = 0
            if self.quotas is not None and self.quotas.covers(name):
                with contextlib.suppress(PathNotFound):
                    size = (await self._driver.stat(layout.blob_data(digest))).size
            new_bytes = await self._admit(name, digest, size)
            await self._blobs.link(name, digest)
            if new_bytes and self.quotas is not None:
                self.quotas.added(name, new_bytes)
            await self._events.publish(BlobLinked(repository=name, digest=digest, source=source))
            return True
        return False

    # -- internals -------------------------------------------------------------------

    async def _admit(self, name: str, digest: Digest, size: int) -> int:
        """Refuse a blob of `size` bytes that would take `name` over quota; the bytes it
        adds (0 when the repository already has it, or no quota names it)."""
        quotas = self.quotas
        if quotas is None or not quotas.covers(name) or await self._blobs.is_linked(name, digest):
            return 0
        await quotas.admit(name, size)
        return size

    async def purge_expired(self, max_idle: float, now: float | None = None) -> list[str]:
        """Delete sessions untouched for `max_idle` seconds; returns their ids.

        Safe on every replica at once: a session is judged by its stored state, and
        deleting an already deleted session is a no-op.
        """
        now = time.time() if now is None else now
        purged = []
        async for session_id in self.book.ids():
            if self._locks.busy(session_id):
                continue  # a request is streaming into it right now
            try:
                async with self._exclusive(session_id):
                    if now - await self.book.idle_since(session_id) > max_idle:
                        name = await self.book.repository_of(session_id)
                        await self._forget(session_id)
                        purged.append(session_id)
                        await self._events.publish(
                            UploadPurged(repository=name or "", session_id=session_id)
                        )
            except BlobUploadUnknown:
                continue  # gone meanwhile, or not a session's name
        return purged

    def _exclusive(self, session_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.exclusive(session_id)

    async def _load(self, name: str, session_id: str) -> SessionState:
        return await self.book.load(name, session_id)

    def _capped(
        self, body: AsyncIterator[bytes], offset: int, length: int | None
    ) -> AsyncIterator[bytes]:
        """`body`, refused at once when its Content-Length would take the blob past
        the limit, else stopped before the first chunk that would (the blocks stored
        until then stay in the session, as after any interrupted chunk)."""
        limit = self._max_blob_bytes
        if not limit:
            return body
        if length is not None and offset + length > limit:
            raise BlobTooLarge(offset + length, limit)
        return _limited(body, limit - offset, limit)

    @staticmethod
    def _check_start(session_id: str, state: SessionState, start: int | None) -> None:
        if start is not None and start != state.offset:
            raise ChunkOutOfOrder(
                f"chunk starts at {start} but the upload has {state.offset} bytes;"
                f" send the chunk starting at {state.offset}",
                {"session_id": session_id, "offset": state.offset},
                headers={"Range": range_header(state.offset)},
            )

    async def _open(self, session_id: str, state: SessionState) -> tuple[FileWriter, SessionState]:
        """The session's writer, holding exactly the `state.offset` bytes the state counts.

        The state is the truth: it is saved only after the bytes it counts are durable,
        and only what it counts was acknowledged (the Range a client resumes from). A
        process killed between writing bytes and saving the state leaves more data
        than that; those bytes are cut off before anything else happens, so a chunk
        resumed from the acknowledged offset lands right after the acknowledged bytes.
        """
        path = layout.upload_data(session_id)
        # Resumed even at offset 0 (then cut back to nothing): a fresh writer would
        # forget what a killed request left, and on S3 that is a multipart upload
        # nobody would abort.
        try:
            writer = await self._driver.writer(path, append=True)
        except PathNotFound:
            if state.offset != 0:
                raise _DataMissing(
                    "upload data is missing; restart the upload", {"session_id": session_id}
                ) from None
            writer = await self._driver.writer(path)
        if writer.size < state.offset:
            await writer.close()
            raise BlobUploadInvalid(
                "upload data is shorter than its recorded state; restart the upload",
                {"session_id": session_id},
            )
        if writer.size > state.offset:
            try:
                await writer.truncate(state.offset)
            except InvalidOffset:
                # S3 cannot cut inside a part it has sent (docs/layout.md, "Uploads").
                await writer.close()
                raise BlobUploadInvalid(
                    "upload state was lost mid-chunk and cannot be recovered; restart the upload",
                    {"session_id": session_id},
                ) from None
        return writer, state

    async def _finish_published(
        self,
        name: str,
        session_id: str,
        state: SessionState,
        digest: Digest,
        body: AsyncIterator[bytes] | None,
        start: int | None,
        length: int | None,
    ) -> Digest:
        """Close a session whose data is gone from it because a process published it as
        the blob and was killed before linking it and forgetting the session.

        The blob is the session's content if its size and sha256 are what the state
        (and the final chunk, if this PUT carries one) say: then it is linked as the
        first PUT would have. Otherwise the data is really lost.
        """
        missing = _DataMissing(
            "upload data is missing; restart the upload", {"session_id": session_id}
        )
        sha256, size = ResumableHasher("sha256", state.sha256), state.offset
        if body is not None:
            self._check_start(session_id, state, start)
            async for block in _blocks(body):
                await asyncio.to_thread(sha256.update, block)
                size += len(block)
            if length is not None and size - state.offset != length:
                raise missing
        try:
            stored = (await self._driver.stat(layout.blob_data(digest))).size
        except PathNotFound:
            raise missing from None
        recorded = await self._blobs.recorded_meta(digest)
        expected = digest if digest.algorithm == "sha256" else recorded and recorded.sha256
        if stored != size or expected != sha256.digest():
            raise missing
        await self._blobs.record_meta(BlobMeta(digest, size, sha256.digest(), None, time.time()))
        await self._blobs.link(name, digest)
        await self._forget(session_id)
        return digest

    async def _receive(
        self,
        session_id: str,
        state: SessionState,
        writer: FileWriter,
        body: AsyncIterator[bytes],
        length: int | None,
        *,
        closing: bool = False,
    ) -> SessionState:
        """Stream `body` into `writer`, hashing as it goes; then make the bytes durable
        and save the state that counts them, in that order, even when receiving fails.

        When the session is `closing` right after (PUT with a body), the writer stays
        open for the commit and state is saved only if receiving fails, so that the
        session can be resumed.
        """
        blake3 = self._blake3.resume(session_id, state.offset)
        sha256 = ResumableHasher("sha256", state.sha256)
        received = 0
        complete = False
        try:
            async for block in _blocks(body):
                before = sha256.state()
                hashers = (sha256, blake3) if blake3 is not None else (sha256,)
                hashing = asyncio.ensure_future(_hash(hashers, block))
                try:
                    await writer.write(block)
                    await hashing
                except BaseException:
                    # The block may or may not be stored, so the hashes count none of
                    # it; the hash thread cannot be stopped, so it finishes first.
                    with contextlib.suppress(BaseException):
                        await hashing
                    sha256, blake3 = ResumableHasher("sha256", before), None
                    raise
                received += len(block)
            complete = True
        finally:
            keep_open = closing and complete
            if not keep_open:
                await writer.close()  # durable before any state counts the bytes
            if received:
                state = replace(
                    state,
                    offset=state.offset + received,
                    sha256=sha256.state(),
                    updated=time.time(),
                )
                if not keep_open:
                    await self.book.save(session_id, state)
            self._blake3.keep(session_id, state.offset, blake3)
        if length is not None and received != length:
            raise BlobUploadInvalid(
                f"received {received} bytes but Content-Length said {length}",
                {"session_id": session_id},
            )
        return state

    async def _verify(
        self, session_id: str, expected: Digest, actual: Digest, writer: FileWriter | None
    ) -> None:
        if actual == expected:
            return
        if writer is not None:
            await writer.cancel()
        await self._forget(session_id)
        raise DigestInvalid(
            f"provided digest {expected} does not match uploaded content ({actual})",
            {"expected": str(expected), "actual": str(actual)},
        )

    async def _rehash_committed(self, session_id: str, algorithm: str) -> Digest:
        hasher = new_hasher(algorithm)
        async for chunk in self._driver.open_read(layout.upload_data(session_id)):
            await asyncio.to_thread(hasher.update, chunk)
        return hasher.digest()

    async def _forget(self, session_id: str) -> None:
        self._blake3.drop(session_id)
        await self.book.end(session_id)


class _DataMissing(BlobUploadInvalid):
    """A session's state counts bytes, but its data object is gone."""


def _sha256_of(state: SessionState) -> Digest:
    return ResumableHasher("sha256", state.sha256).digest()


async def _hash(hashers: tuple[ResumableHasher | Blake3Hasher, ...], block: bytes) -> None:
    """Both digests of `block` in one thread hop: a hop costs (futex, GIL hand-offs,
    docs/benchmarks.md "fourth round") more than running the two side by side saves,
    and the block's write runs beside it anyway."""
    await asyncio.to_thread(MultiHasher(hashers).update, block)


async def _limited(body: AsyncIterator[bytes], room: int, limit: int) -> AsyncIterator[bytes]:
    async for chunk in body:
        room -= len(chunk)
        if room < 0:
            raise BlobTooLarge(None, limit)
        yield chunk


def range_header(offset: int) -> str:
    """The spec's `Range: 0-<last byte>`; `0-0` when nothing is stored yet."""
    return f"0-{max(offset - 1, 0)}"


async def _blocks(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Regroup a request's small chunks into BLOCK_SIZE blocks for storage and hashing.

    Chunks are gathered and joined once: every copy of a byte costs, and a growing
    bytearray copied into bytes (for rehashes) would copy each byte twice.
    """
    pieces: list[bytes] = []
    size = 0
    async for chunk in body:
        if not pieces and len(chunk) >= BLOCK_SIZE:
            yield chunk
            continue
        pieces.append(chunk)
        size += len(chunk)
        if size >= BLOCK_SIZE:
            yield b"".join(pieces)
            pieces, size = [], 0
    if pieces:
        yield b"".join(pieces)
