"""The upload bookkeeping, one owner per concern: open sessions in storage, the
per-session locks, the blake3 shortcut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from arca.config import Settings
from arca.errors import BlobUploadUnknown, DigestInvalid
from arca.formats.digest import Blake3Hasher, Digest
from arca.registry.registry import Registry
from arca.registry.upload_sessions import Blake3Cache, SessionLocks
from arca.registry.uploads import BLOCK_SIZE
from arca.storage.drivers.memory import MemoryDriver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_the_book_knows_the_open_sessions_and_nothing_else_does() -> None:
    registry = Registry(MemoryDriver(), Settings())
    uploads = registry.uploads
    first = await uploads.start("app")
    second = await uploads.start("other")
    await uploads.append("app", first.session_id, _body(b"half"))
    assert {sid async for sid, _ in uploads.book.open()} == {first.session_id, second.session_id}

    with pytest.raises(BlobUploadUnknown):  # another repository's session: unknown here
        await uploads.book.load("other", first.session_id)
    assert (await uploads.book.load("app", first.session_id)).offset == 4

    await uploads.finish("app", first.session_id, Digest.of(b"half"))
    await uploads.cancel("other", second.session_id)
    assert [sid async for sid, _ in uploads.book.open()] == []


async def test_the_blake3_of_a_session_seen_whole_is_recorded_and_one_seen_in_part_is_not() -> None:
    registry = Registry(MemoryDriver(), Settings())
    uploads = registry.uploads
    whole = await uploads.start("app")
    await uploads.append("app", whole.session_id, _body(b"every byte here"))
    digest = Digest.of(b"every byte here")
    await uploads.finish("app", whole.session_id, digest)
    meta = await registry.blobs.recorded_meta(digest)
    assert meta is not None
    assert meta.blake3 == Digest.of(b"every byte here", "blake3")

    part = await uploads.start("app")
    await uploads.append("app", part.session_id, _body(b"first "))
    other_process = Registry(registry.driver, Settings()).uploads  # never saw those bytes
    await other_process.append("app", part.session_id, _body(b"second"))
    seen_in_part = Digest.of(b"first second")
    await other_process.finish("app", part.session_id, seen_in_part)
    meta = await registry.blobs.recorded_meta(seen_in_part)
    assert meta is not None
    assert meta.blake3 is None  # computed later, on first use


async def test_a_session_takes_one_request_at_a_time_and_the_lock_table_empties() -> None:
    locks = SessionLocks(MemoryDriver())
    session = "a" * 32
    order: list[str] = []

    async def request(label: str) -> None:
        async with locks.exclusive(session):
            order.append(f"{label} in")
            await asyncio.sleep(0.05)
            order.append(f"{label} out")

    first = asyncio.create_task(request("first"))
    await asyncio.sleep(0.01)
    assert locks.busy(session)
    await asyncio.gather(first, request("second"))
    assert order == ["first in", "first out", "second in", "second out"]
    assert not locks.busy(session)
    assert len(locks) == 0
    with pytest.raises(BlobUploadUnknown):
        async with locks.exclusive("../../etc"):
            pass


def test_the_blake3_cache_resumes_only_at_the_offset_it_has_seen_and_stays_bounded() -> None:
    cache = Blake3Cache(limit=2)
    fresh = cache.resume("s1", 0)
    assert fresh is not None
    assert cache.resume("s1", 10) is None  # bytes this process never saw
    fresh.update(b"0123456789")
    cache.keep("s1", 10, fresh)
    assert cache.resume("s1", 10) is fresh
    assert cache.digest("s1", 10) == Digest.of(b"0123456789", "blake3")
    assert cache.digest("s1", 11) is None
    cache.keep("s1", 10, None)  # a receive that failed mid-block: forget it
    assert cache.resume("s1", 10) is None
    for name in ("s2", "s3", "s4"):
        cache.keep(name, 0, Blake3Hasher())
    assert len(cache) == 2
    assert cache.digest("s2", 0) is None  # the least recently used went


async def test_blocks_spanning_requests_hash_to_the_right_digests_and_a_wrong_one_is_refused() -> (
    None
):
    """Bodies regrouped into BLOCK_SIZE blocks, both digests of a block in one hop: a
    blob of several blocks sent in odd-sized pieces over two PATCHes and a closing PUT
    gets its sha256 and blake3 right; the same bytes closed under a wrong digest are
    refused and leave nothing visible."""
    data = bytes(range(251)) * (2 * BLOCK_SIZE // 251 + 3)

    async def pieces(part: bytes, size: int = 777_777) -> AsyncIterator[bytes]:
        for start in range(0, len(part), size):
            yield part[start : start + size]

    registry = Registry(MemoryDriver(), Settings())
    uploads = registry.uploads
    cut, end = BLOCK_SIZE + 12_345, len(data) - 1000
    session = await uploads.start("app")
    await uploads.append("app", session.session_id, pieces(data[:cut]), start=0)
    await uploads.append("app", session.session_id, pieces(data[cut:end]), start=cut)
    digest = Digest.of(data)
    await uploads.finish("app", session.session_id, digest, pieces(data[end:]), start=end)
    meta = await registry.blobs.recorded_meta(digest)
    assert meta is not None
    assert meta.size == len(data)
    assert meta.blake3 == Digest.of(data, "blake3")

    wrong = await uploads.start("app")
    await uploads.append("app", wrong.session_id, pieces(data[:-1]))
    with pytest.raises(DigestInvalid):
        await uploads.finish("app", wrong.session_id, Digest.of(b"not it"))
    assert not await registry.blobs.is_linked("app", Digest.of(b"not it"))
    assert not await registry.blobs.exists_anywhere(Digest.of(data[:-1]))
    assert [sid async for sid, _ in uploads.book.open()] == []
