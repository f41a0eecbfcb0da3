"""The contract every driver passes (see arca.storage.driver), run over every backend."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from arca.storage.driver import (
    CHUNK_SIZE,
    AlreadyExists,
    Driver,
    FileWriter,
    InvalidOffset,
    InvalidPath,
    ObjectInfo,
    PathNotFound,
)
from tests.storage.conftest import NewDriver, expect_gap, skip_gap

pytestmark = pytest.mark.anyio

MiB = 1 << 20


async def read_all(driver: Driver, path: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in driver.open_read(path, offset, length)])


async def names(driver: Driver, prefix: str, start_after: str | None = None) -> list[str]:
    return [name async for name in driver.list(prefix, start_after)]


async def walked(driver: Driver, prefix: str) -> dict[str, int]:
    return {info.path: info.size async for info in driver.walk(prefix)}


# -- get / put ---------------------------------------------------------------------------


async def test_put_then_get_returns_the_bytes(driver: Driver) -> None:
    await driver.put("a/b/c", b"hello")
    assert await driver.get("a/b/c") == b"hello"


async def test_put_replaces_an_existing_object(driver: Driver) -> None:
    await driver.put("a/b", b"first, longer")
    await driver.put("a/b", b"second")
    assert await driver.get("a/b") == b"second"


async def test_an_unsynced_put_is_read_back_and_replaces_like_a_put(driver: Driver) -> None:
    await driver.put_unsynced("a/new/dirs/state", b"first, longer")
    assert await driver.get("a/new/dirs/state") == b"first, longer"
    await driver.put_unsynced("a/new/dirs/state", b"second")
    assert await driver.get("a/new/dirs/state") == b"second"
    assert [name async for name in driver.list("a/new/dirs")] == ["state"]


async def test_get_of_a_missing_object_raises_path_not_found(driver: Driver) -> None:
    with pytest.raises(PathNotFound):
        await driver.get("no/such/object")


async def test_get_of_a_prefix_raises_path_not_found(driver: Driver) -> None:
    await driver.put("dir/object", b"x")
    with pytest.raises(PathNotFound):
        await driver.get("dir")


@pytest.mark.parametrize("size", [0, 1])
async def test_tiny_objects_round_trip(driver: Driver, size: int) -> None:
    data = b"z" * size
    await driver.put("tiny", data)
    assert await driver.get("tiny") == data
    assert await read_all(driver, "tiny") == data
    assert (await driver.stat("tiny")).size == size


async def test_readers_never_see_a_partial_object_during_overwrites(driver: Driver) -> None:
    small, large = b"s" * 1024, b"L" * (2 * MiB + 7)
    await driver.put("atomic", small)
    done = asyncio.Event()
    seen: set[int] = set()

    async def overwrite() -> None:
        for round_ in range(6):
            await driver.put("atomic", large if round_ % 2 == 0 else small)
            await asyncio.sleep(0)
        done.set()

    async def read() -> None:
        while True:
            for data in (await driver.get("atomic"), await read_all(driver, "atomic")):
                assert data in (small, large)
                seen.add(len(data))
            if done.is_set():
                return
            await asyncio.sleep(0)

    await asyncio.gather(overwrite(), read(), read())
    assert seen


# -- if_absent ---------------------------------------------------------------------------


async def test_put_if_absent_creates_once(driver: Driver, request: pytest.FixtureRequest) -> None:
    expect_gap(request, "if_absent")
    await driver.put("once", b"first", if_absent=True)
    with pytest.raises(AlreadyExists):
        await driver.put("once", b"second", if_absent=True)
    assert await driver.get("once") == b"first"


async def test_put_if_absent_lets_exactly_one_concurrent_writer_win(
    driver: Driver, request: pytest.FixtureRequest
) -> None:
    expect_gap(request, "if_absent")

    async def attempt(index: int) -> bool:
        try:
            await driver.put("race", b"writer %d" % index, if_absent=True)
        except AlreadyExists:
            return False
        return True

    wins = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert wins.count(True) == 1
    assert await driver.get("race") == b"writer %d" % wins.index(True)


# -- open_read ---------------------------------------------------------------------------


async def test_open_read_streams_large_chunks_for_odd_sizes(driver: Driver) -> None:
    data = os.urandom(2 * CHUNK_SIZE + CHUNK_SIZE // 2 + 1)
    await driver.put("odd", data)
    chunks = [chunk async for chunk in driver.open_read("odd")]
    assert b"".join(chunks) == data
    assert all(len(chunk) >= CHUNK_SIZE for chunk in chunks[:-1])


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, None), (1, None), (0, 10), (5, 10), (100, 1), (123, None), (0, 1000), (120, 50)],
)
async def test_open_read_honours_offset_and_length(
    driver: Driver, offset: int, length: int | None
) -> None:
    data = bytes(range(124))
    await driver.put("ranged", data)
    end = None if length is None else offset + length
    assert await read_all(driver, "ranged", offset, length) == data[offset:end]


async def test_open_read_at_the_end_yields_nothing(driver: Driver) -> None:
    await driver.put("ten", b"0123456789")
    assert await read_all(driver, "ten", 10) == b""
    assert await read_all(driver, "ten", 10, 5) == b""
    assert await read_all(driver, "ten", 3, 0) == b""
    await driver.put("empty", b"")
    assert await read_all(driver, "empty", 0, 4) == b""


@pytest.mark.parametrize(("offset", "length"), [(11, None), (11, 1), (-1, None), (12, 0)])
async def test_open_read_past_the_end_raises_invalid_offset(
    driver: Driver, offset: int, length: int | None
) -> None:
    await driver.put("ten", b"0123456789")
    with pytest.raises(InvalidOffset):
        await read_all(driver, "ten", offset, length)


async def test_open_read_of_a_missing_object_raises_path_not_found(driver: Driver) -> None:
    with pytest.raises(PathNotFound):
        await read_all(driver, "missing", 0, 10)


async def test_open_read_can_stop_early(driver: Driver) -> None:
    await driver.put("big", b"x" * (3 * CHUNK_SIZE))
    async with aclosing(driver.open_read("big")) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            assert chunk
            break


# -- stat / exists -----------------------------------------------------------------------


async def test_stat_reports_size_and_modification_time(driver: Driver) -> None:
    before = time.time()
    await driver.put("dir/object", b"12345")
    info = await driver.stat("dir/object")
    assert info == ObjectInfo("dir/object", 5, info.modified)
    assert before - 2 <= info.modified <= time.time() + 2


async def test_stat_and_exists_of_missing_objects_and_prefixes(driver: Driver) -> None:
    await driver.put("dir/object", b"x")
    assert await driver.exists("dir/object")
    assert not await driver.exists("dir/other")
    assert not await driver.exists("dir")
    with pytest.raises(PathNotFound):
        await driver.stat("dir")
    with pytest.raises(PathNotFound):
        await driver.stat("nothing/here")


# -- list / walk -------------------------------------------------------------------------


async def test_list_yields_direct_children_sorted(driver: Driver) -> None:
    for path in ["p/b", "p/a/x", "p/a/y/z", "p/c/d", "p/aa", "q/other", "p2/sibling"]:
        await driver.put(path, b"x")
    assert await names(driver, "p") == ["a", "aa", "b", "c"]
    assert await names(driver, "p/a") == ["x", "y"]


async def test_list_sorts_by_name_not_by_key(driver: Driver) -> None:
    # Object stores list `v1/` after `v1-rc/` and `v1.0/`: the driver must not.
    for tag in ["v1", "v1.0", "v1-rc", "v10", "v1_x", "v"]:
        await driver.put(f"tags/{tag}/current/link", b"x")
    await driver.put("tags/v1a", b"x")
    expected = ["v", "v1", "v1-rc", "v1.0", "v10", "v1_x", "v1a"]
    assert await names(driver, "tags") == expected
    for index, after in enumerate(expected):
        assert await names(driver, "tags", start_after=after) == expected[index + 1 :]
    assert await names(driver, "tags", start_after="v1+") == expected[2:]
    assert await names(driver, "tags", start_after="v1-rc0") == expected[3:]


async def test_list_of_a_missing_prefix_or_an_object_is_empty(driver: Driver) -> None:
    await driver.put("dir/object", b"x")
    assert await names(driver, "nothing") == []
    assert await names(driver, "dir/object") == []


async def test_list_start_after_skips_names_up_to_it(driver: Driver) -> None:
    for name in "abcde":
        await driver.put(f"letters/{name}", b"x")
    assert await names(driver, "letters", start_after="b") == ["c", "d", "e"]
    assert await names(driver, "letters", start_after="bb") == ["c", "d", "e"]
    assert await names(driver, "letters", start_after="e") == []


async def test_list_page_returns_what_list_yields_up_to_the_limit(driver: Driver) -> None:
    for name in ["v1", "v1.0", "v1-rc", "v10", "a", "b/c"]:
        await driver.put(f"page/{name}", b"x")
    every = await names(driver, "page")
    assert every == ["a", "b", "v1", "v1-rc", "v1.0", "v10"]
    assert await driver.list_page("page", None, 100) == every
    assert await driver.list_page("page", None, 2) == ["a", "b"]
    assert await driver.list_page("page", "b", 2) == ["v1", "v1-rc"]
    assert await driver.list_page("page", "v1+", 10) == ["v1-rc", "v1.0", "v10"]
    assert await driver.list_page("page", "v10", 10) == []
    assert await driver.list_page("page", None, 0) == []
    assert await driver.list_page("nothing", None, 10) == []


async def test_walk_yields_every_object_under_a_prefix(driver: Driver) -> None:
    objects = {"w/a": 1, "w/b/c": 2, "w/b/d/e": 3, "w/f": 0}
    for path, size in objects.items():
        await driver.put(path, b"x" * size)
    await driver.put("w2/not-under", b"x")
    await driver.put("other", b"x")
    assert await walked(driver, "w") == objects
    assert await walked(driver, "w/b") == {"w/b/c": 2, "w/b/d/e": 3}
    assert await walked(driver, "nothing") == {}


async def test_walk_infos_carry_modification_times(driver: Driver) -> None:
    await driver.put("t/x", b"abc")
    [info] = [info async for info in driver.walk("t")]
    assert info.size == 3
    assert abs(info.modified - (await driver.stat("t/x")).modified) < 2


# -- delete ------------------------------------------------------------------------------


async def test_delete_an_object(driver: Driver) -> None:
    await driver.put("d/x", b"1")
    await driver.put("d/y", b"2")
    await driver.delete("d/x")
    assert not await driver.exists("d/x")
    assert await driver.get("d/y") == b"2"
    assert await names(driver, "d") == ["y"]


async def test_delete_a_prefix_removes_everything_under_it(driver: Driver) -> None:
    for path in ["d/a/1", "d/a/2/3", "d/ab", "d/a-b/4"]:
        await driver.put(path, b"x")
    await driver.delete("d/a")
    assert await walked(driver, "d") == {"d/ab": 1, "d/a-b/4": 1}
    assert await names(driver, "d") == ["a-b", "ab"]


async def test_delete_of_the_last_object_leaves_no_prefix_behind(driver: Driver) -> None:
    await driver.put("e/f/g/h", b"x")
    await driver.put("e/keep", b"x")
    await driver.delete("e/f/g/h")
    assert await names(driver, "e") == ["keep"]


async def test_delete_of_nothing_raises_path_not_found(driver: Driver) -> None:
    await driver.put("d/object", b"x")
    with pytest.raises(PathNotFound):
        await driver.delete("d/missing")
    with pytest.raises(PathNotFound):
        await driver.delete("d/obj")  # a string prefix of a name is not a path prefix


async def test_delete_if_removes_only_the_expected_content(driver: Driver) -> None:
    await driver.put("c/tag", b"one")
    assert not await driver.delete_if("c/tag", b"two")
    assert await driver.get("c/tag") == b"one"
    assert not await driver.delete_if("c/missing", b"one")
    assert await driver.delete_if("c/tag", b"one")
    assert not await driver.exists("c/tag")
    assert not await driver.delete_if("c/tag", b"one")


async def test_delete_if_racing_a_put_of_other_content_never_deletes_it(
    driver: Driver, new_driver: NewDriver, request: pytest.FixtureRequest
) -> None:
    """Compare-and-delete racing a writer (another instance, as another process would):
    deleting first leaves the put's object; putting first leaves nothing to delete."""
    skip_gap(request, "delete_if")
    if type(_unwrapped(driver)).delete_if is Driver.delete_if:
        pytest.skip(f"{driver.name} keeps the base class's read-then-delete (not atomic)")
    other = new_driver()
    for round_ in range(30):
        path = f"c/race{round_}"
        await driver.put(path, b"old")
        await asyncio.gather(driver.delete_if(path, b"old"), other.put(path, b"new"))
        assert await driver.get(path) == b"new", round_


# -- move --------------------------------------------------------------------------------


async def test_move_renames_an_object(driver: Driver) -> None:
    await driver.put("from/here", b"payload")
    await driver.move("from/here", "to/a/new/place")
    assert await driver.get("to/a/new/place") == b"payload"
    assert not await driver.exists("from/here")


async def test_move_replaces_the_destination(driver: Driver) -> None:
    await driver.put("src", b"new")
    await driver.put("dst", b"old and longer")
    await driver.move("src", "dst")
    assert await driver.get("dst") == b"new"
    assert not await driver.exists("src")


async def test_move_of_a_missing_object_raises_path_not_found(driver: Driver) -> None:
    with pytest.raises(PathNotFound):
        await driver.move("missing", "anywhere")


# -- paths -------------------------------------------------------------------------------

INVALID_PATHS = ["", "/abs", "a//b", "a/../b", "..", "./a", "a/.", "a/", "a\\b", "a\0b", "x~"]


@pytest.mark.parametrize("path", INVALID_PATHS)
async def test_invalid_paths_are_refused_everywhere(driver: Driver, path: str) -> None:
    with pytest.raises(InvalidPath):
        await driver.put(path, b"x")
    with pytest.raises(InvalidPath):
        await driver.get(path)
    with pytest.raises(InvalidPath):
        await read_all(driver, path)
    with pytest.raises(InvalidPath):
        await driver.stat(path)
    with pytest.raises(InvalidPath):
        await names(driver, path)
    with pytest.raises(InvalidPath):
        await walked(driver, path)
    with pytest.raises(InvalidPath):
        await driver.delete(path)
    with pytest.raises(InvalidPath):
        await driver.move(path, "ok")
    await driver.put("ok", b"x")
    with pytest.raises(InvalidPath):
        await driver.move("ok", path)
    with pytest.raises(InvalidPath):
        await driver.writer(path)


# -- writers -----------------------------------------------------------------------------


async def test_writer_resumes_from_another_instance(new_driver: NewDriver) -> None:
    first, second = new_driver(), new_driver()
    writer = await first.writer("uploads/u1/data")
    for chunk in (b"alpha-", b"beta-", b"gamma-"):
        await writer.write(chunk)
    assert writer.size == 17
    await writer.close()

    resumed = await second.writer("uploads/u1/data", append=True)
    assert resumed.size == 17
    await resumed.write(b"delta")
    assert resumed.size == 22
    await resumed.commit()
    assert await second.get("uploads/u1/data") == b"alpha-beta-gamma-delta"
    assert await first.get("uploads/u1/data") == b"alpha-beta-gamma-delta"


async def test_a_resumed_writer_cuts_bytes_its_owner_never_counted(
    new_driver: NewDriver,
) -> None:
    """A process killed between closing a writer and recording its size: the next one
    cuts back to the recorded size before appending."""
    writer = await new_driver().writer("uploads/u2/data")
    if type(_unwrapped(writer)).truncate is FileWriter.truncate:
        await writer.cancel()
        pytest.skip("this driver's writers cannot cut (uploads ask the client to restart)")
    await writer.write(b"counted-")
    await writer.close()
    writer = await new_driver().writer("uploads/u2/data", append=True)
    await writer.write(b"stray bytes")
    await writer.close()

    resumed = await new_driver().writer("uploads/u2/data", append=True)
    with pytest.raises(InvalidOffset):
        await resumed.truncate(resumed.size + 1)
    await resumed.truncate(8)
    assert resumed.size == 8
    await resumed.write(b"next")
    await resumed.close()
    again = await new_driver().writer("uploads/u2/data", append=True)
    assert again.size == 12
    await again.commit()
    assert await new_driver().get("uploads/u2/data") == b"counted-next"


async def test_writer_of_many_parts_resumes_between_small_chunks(new_driver: NewDriver) -> None:
    data = os.urandom(12 * MiB + 3)
    pieces = [data[i : i + 64 * 1024] for i in range(0, len(data), 64 * 1024)]
    cut = len(pieces) * 7 // 12  # close mid-way, at 7 MiB: after a part, before the next
    writer = await new_driver().writer("big/data")
    for piece in pieces[:cut]:
        await writer.write(piece)
    await writer.close()
    writer = await new_driver().writer("big/data", append=True)
    assert writer.size == sum(map(len, pieces[:cut]))
    for piece in pieces[cut:]:
        await writer.write(piece)
    assert writer.size == len(data)
    await writer.commit()
    reader = new_driver()
    assert (await reader.stat("big/data")).size == len(data)
    assert await read_all(reader, "big/data") == data


async def test_writer_sessions_of_one_mebibyte_each(new_driver: NewDriver) -> None:
    chunks = [bytes([i]) * MiB for i in range(3)]
    writer = await new_driver().writer("small/data")
    await writer.close()
    for index, chunk in enumerate(chunks):
        writer = await new_driver().writer("small/data", append=True)
        assert writer.size == index * MiB
        await writer.write(chunk)
        await writer.close()
    writer = await new_driver().writer("small/data", append=True)
    assert writer.size == 3 * MiB
    await writer.commit()
    assert await new_driver().get("small/data") == b"".join(chunks)


async def test_writer_commit_of_nothing_is_an_empty_object(driver: Driver) -> None:
    writer = await driver.writer("empty/data")
    assert writer.size == 0
    await writer.commit()
    assert await driver.get("empty/data") == b""


async def test_writer_cancel_discards_everything(new_driver: NewDriver) -> None:
    driver = new_driver()
    writer = await driver.writer("gone/data")
    await writer.write(b"x" * (6 * MiB))
    await writer.close()
    writer = await new_driver().writer("gone/data", append=True)
    await writer.write(b"more")
    await writer.cancel()
    assert not await driver.exists("gone/data")
    with pytest.raises(PathNotFound):
        await driver.writer("gone/data", append=True)


async def test_writer_append_without_a_writer_raises_path_not_found(driver: Driver) -> None:
    with pytest.raises(PathNotFound):
        await driver.writer("never/written", append=True)


async def test_delete_discards_an_unfinished_writer(driver: Driver) -> None:
    writer = await driver.writer("uploads/u2/data")
    await writer.write(b"x" * (6 * MiB))
    await writer.close()
    await driver.put("uploads/u2/state", b"state")
    await driver.delete("uploads/u2")
    with pytest.raises(PathNotFound):
        await driver.writer("uploads/u2/data", append=True)
    assert await walked(driver, "uploads") == {}


async def test_concurrent_writers_of_one_path_leave_one_whole_object(driver: Driver) -> None:
    contents = [os.urandom(3 * MiB + 11), os.urandom(2 * MiB + 5)]

    async def write(data: bytes) -> None:
        writer = await driver.writer("contended")
        for start in range(0, len(data), 256 * 1024):
            await writer.write(data[start : start + 256 * 1024])
            await asyncio.sleep(0)
        await writer.commit()

    await asyncio.gather(*(write(data) for data in contents))
    assert await driver.get("contended") in contents


async def test_listings_never_show_reserved_names(driver: Driver) -> None:
    writer = await driver.writer("r/pending")
    await writer.write(b"abc")
    await writer.close()
    await driver.put("r/done", b"x")
    assert all(not name.endswith("~") for name in await names(driver, "r"))
    assert all(not path.endswith("~") for path in await walked(driver, "r"))
    assert "r/done" in await walked(driver, "r")


# -- the rest ----------------------------------------------------------------------------


async def test_url_for_is_none_or_serves_the_object(driver: Driver) -> None:
    await driver.put("blobs/x/data", b"served directly")
    url = await driver.url_for("blobs/x/data", expires=60)
    if url is not None:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200
        assert response.content == b"served directly"


async def test_check_passes_on_a_working_backend(driver: Driver) -> None:
    await driver.check()


def _unwrapped(wrapped: Any) -> Any:
    """The driver or writer behind the checking wrapper, whose own methods say what it can."""
    while hasattr(wrapped, "inner"):
        wrapped = wrapped.inner
    return wrapped
