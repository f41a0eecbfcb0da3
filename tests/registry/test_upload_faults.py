"""Upload sessions under faults and races: nothing published is ever wrong, and a
session that can be resumed is resumed with the right digest."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arca.config import Settings
from arca.errors import DigestInvalid
from arca.formats.digest import Digest
from arca.registry.registry import Registry
from arca.storage.driver import CHUNK_SIZE, StorageError
from arca.storage.drivers.filesystem import FilesystemDriver
from arca.storage.drivers.memory import MemoryDriver
from tests.doubles import FaultyDriver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def digest_of(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


async def chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_chunk_racing_the_close_on_another_process_never_reaches_the_blob(
    tmp_path: Path,
) -> None:
    """Two workers on one root: a PATCH still streaming when the other worker closes the
    session must not append to the published blob (the session lock orders them)."""
    one = Registry(FilesystemDriver(str(tmp_path)), Settings())
    two = Registry(FilesystemDriver(str(tmp_path)), Settings())
    good = b"A" * 1000
    session = (await one.uploads.start("repo")).session_id
    await one.uploads.append("repo", session, chunks(good))
    gate = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"EVIL" * 10
        await gate.wait()

    patch = asyncio.create_task(two.uploads.append("repo", session, slow_body()))
    await asyncio.sleep(0.1)  # the PATCH holds the session
    close = asyncio.create_task(one.uploads.finish("repo", session, digest_of(good)))
    await asyncio.sleep(0.1)
    assert not close.done()  # waits for the PATCH instead of publishing under it
    gate.set()
    await patch
    with pytest.raises(DigestInvalid):  # the session now holds good + EVIL
        await close
    assert not await one.blobs.exists_anywhere(digest_of(good))
    again = (await one.uploads.start("repo")).session_id
    await one.uploads.finish("repo", again, digest_of(good), chunks(good))
    stored = b"".join([chunk async for chunk in one.blobs.read(digest_of(good))])
    assert stored == good


async def test_a_failed_storage_write_leaves_a_session_that_resumes_correctly() -> None:
    driver = FaultyDriver(MemoryDriver())
    registry = Registry(driver, Settings())
    blob = bytes(range(256)) * (3 * CHUNK_SIZE // 256)
    session = (await registry.uploads.start("repo")).session_id
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        async for chunk in chunks(blob[: 2 * CHUNK_SIZE]):
            yield chunk
            sent += len(chunk)
            if sent == CHUNK_SIZE:
                driver.fail_write = True  # the second block's write fails

    with pytest.raises(StorageError):
        await registry.uploads.append("repo", session, body())
    offset = (await registry.uploads.status("repo", session)).offset
    assert offset < 2 * CHUNK_SIZE
    digest = await registry.uploads.finish(
        "repo", session, digest_of(blob), chunks(blob[offset:]), start=offset
    )
    assert digest == digest_of(blob)


async def test_state_never_counts_bytes_the_writer_could_not_persist(tmp_path: Path) -> None:
    driver = FaultyDriver(FilesystemDriver(str(tmp_path)))
    registry = Registry(driver, Settings())
    session = (await registry.uploads.start("repo")).session_id
    await registry.uploads.append("repo", session, chunks(b"a" * 1000))
    driver.fail_close = True  # e.g. ENOSPC when the last bytes are flushed
    with pytest.raises(StorageError):
        await registry.uploads.append("repo", session, chunks(b"b" * 1000), start=1000)
    offset = (await registry.uploads.status("repo", session)).offset
    assert offset == 1000
    data = b"a" * 1000 + b"c" * 500
    await registry.uploads.finish(
        "repo", session, digest_of(data), chunks(b"c" * 500), start=offset
    )
