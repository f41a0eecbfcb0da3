"""What only the filesystem driver promises: staying inside its root, and tidy directories."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arca.storage.driver import AlreadyExists, InvalidPath, PathNotFound
from arca.storage.drivers.filesystem import FilesystemDriver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
async def driver(root: Path) -> AsyncIterator[FilesystemDriver]:
    driver = FilesystemDriver(str(root))
    yield driver
    await driver.close()


async def test_a_planted_directory_symlink_cannot_lead_outside(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "repositories").mkdir()
    (root / "repositories" / "evil").symlink_to(outside)

    with pytest.raises(InvalidPath):
        await driver.put("repositories/evil/planted", b"x")
    with pytest.raises(InvalidPath):
        await driver.writer("repositories/evil/planted")
    with pytest.raises(InvalidPath):
        await driver.get("repositories/evil/secret")
    with pytest.raises(InvalidPath):
        await driver.delete("repositories/evil/secret")
    with pytest.raises(InvalidPath):
        [name async for name in driver.list("repositories/evil")]
    assert sorted(os.listdir(outside)) == ["secret"]


async def test_a_planted_file_symlink_cannot_be_read_or_moved(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "passwd").write_bytes(b"root:x:0:0")
    root.mkdir(exist_ok=True)
    (root / "link").symlink_to(tmp_path / "passwd")
    with pytest.raises(InvalidPath):
        await driver.get("link")
    with pytest.raises(InvalidPath):
        await driver.move("link", "stolen")


async def test_symlinks_within_the_root_are_followed(driver: FilesystemDriver, root: Path) -> None:
    await driver.put("real/object", b"inside")
    (root / "alias").symlink_to(root / "real")
    assert await driver.get("alias/object") == b"inside"


async def test_put_leaves_no_temporary_files(driver: FilesystemDriver, root: Path) -> None:
    await driver.put("d/x", b"1")
    await driver.put("d/x", b"2")
    await driver.put("d/y", b"3", if_absent=True)
    assert sorted(os.listdir(root / "d")) == ["x", "y"]


async def test_leftover_temporary_files_are_invisible(driver: FilesystemDriver, root: Path) -> None:
    await driver.put("d/x", b"1")
    (root / "d" / ".0123abcd.tmp~").write_bytes(b"from a crash")
    assert [name async for name in driver.list("d")] == ["x"]
    assert [info.path async for info in driver.walk("d")] == ["d/x"]


async def test_delete_prunes_empty_directories_up_to_the_root(
    driver: FilesystemDriver, root: Path
) -> None:
    await driver.put("a/b/c/d", b"x")
    await driver.put("a/keep", b"x")
    await driver.delete("a/b/c/d")
    assert sorted(os.listdir(root / "a")) == ["keep"]
    await driver.delete("a/keep")
    assert os.listdir(root) == []


async def test_move_prunes_the_source_directory(driver: FilesystemDriver, root: Path) -> None:
    await driver.put("uploads/u/data", b"x")
    await driver.move("uploads/u/data", "blobs/ab/data")
    assert os.listdir(root) == ["blobs"]


async def test_a_planted_fifo_is_not_an_object(driver: FilesystemDriver, root: Path) -> None:
    root.mkdir(exist_ok=True)
    os.mkfifo(root / "fifo")  # opening it for reading would block forever
    with pytest.raises(PathNotFound):
        await driver.get("fifo")
    with pytest.raises(PathNotFound):
        [chunk async for chunk in driver.open_read("fifo")]


async def test_writer_bytes_are_in_the_file_at_the_path(
    driver: FilesystemDriver, root: Path
) -> None:
    writer = await driver.writer("uploads/u/data")
    await writer.write(b"partial")
    await writer.close()
    assert (root / "uploads" / "u" / "data").read_bytes() == b"partial"


async def test_cancel_spares_a_newer_writer_of_the_same_path(driver: FilesystemDriver) -> None:
    older = await driver.writer("contended")
    newer = await driver.writer("contended")
    await newer.write(b"newer")
    await older.cancel()
    await newer.commit()
    assert await driver.get("contended") == b"newer"


async def test_a_directory_is_not_an_object(driver: FilesystemDriver) -> None:
    await driver.put("dir/object", b"x")
    with pytest.raises(PathNotFound):
        [chunk async for chunk in driver.open_read("dir")]
    with pytest.raises(PathNotFound):
        await driver.writer("dir", append=True)
    with pytest.raises(PathNotFound):
        await driver.move("dir", "elsewhere")


async def test_a_cancelled_write_waits_for_its_thread(driver: FilesystemDriver, root: Path) -> None:
    # Closing the descriptor under a running write could send its bytes to whatever
    # file reuses the number next; so cancellation returns only once the write is done.
    writer = await driver.writer("uploads/u/data")
    data = b"x" * (64 << 20)
    task = asyncio.ensure_future(writer.write(data))
    await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (root / "uploads" / "u" / "data").stat().st_size == len(data)


async def test_a_cancelled_put_still_lands_whole_and_later_puts_run(
    driver: FilesystemDriver, root: Path
) -> None:
    """A put handed to a write thread runs to its end when its caller is cancelled
    (the object is there whole, or its caller would not have been told anything), and
    the threads keep serving puts, more at once than there are threads too."""
    from arca.storage.drivers import filesystem

    data = b"y" * (8 << 20)
    task = asyncio.ensure_future(driver.put("repo/big", data))
    await asyncio.sleep(0.001)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(200):  # until the thread finished
        if (root / "repo" / "big").exists():
            break
        await asyncio.sleep(0.01)
    assert await driver.get("repo/big") == data
    count = filesystem._WRITE_THREADS + 16
    await asyncio.gather(*(driver.put(f"repo/many/{i}", b"%d" % i) for i in range(count)))
    assert [await driver.get(f"repo/many/{i}") for i in range(count)] == [
        b"%d" % i for i in range(count)
    ]
    with pytest.raises(AlreadyExists):  # a thread's error reaches its caller
        await driver.put("repo/many/0", b"again", if_absent=True)


async def test_lock_excludes_another_instance_until_released(tmp_path: Path) -> None:
    first, second = FilesystemDriver(str(tmp_path)), FilesystemDriver(str(tmp_path))
    await first.put("uploads/s1/state", b"x")
    order: list[str] = []

    async def take(driver: FilesystemDriver, label: str, hold: float) -> None:
        async with driver.lock("uploads/s1"):
            order.append(f"{label} in")
            await asyncio.sleep(hold)
            order.append(f"{label} out")

    holder = asyncio.create_task(take(first, "first", 0.2))
    await asyncio.sleep(0.05)
    await take(second, "second", 0)
    await holder
    assert order == ["first in", "first out", "second in", "second out"]
    assert [name async for name in first.list("uploads/s1")] == ["state"]  # lock~ hidden


async def test_lock_on_a_missing_prefix_is_path_not_found(tmp_path: Path) -> None:
    driver = FilesystemDriver(str(tmp_path))
    with pytest.raises(PathNotFound):
        async with driver.lock("uploads/gone"):
            pass


async def test_a_lock_file_planted_as_a_symlink_is_refused(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    """A prefix's lock file is not an object path the root check sees: a symlink
    planted in its place must not create (or lock) a file outside the root."""
    await driver.put("uploads/s1/state", b"x")
    (root / "uploads" / "s1" / "lock~").symlink_to(tmp_path / "created-outside")
    with pytest.raises(InvalidPath):
        async with driver.lock("uploads/s1"):
            pass
    assert not (tmp_path / "created-outside").exists()


async def test_creating_and_pruning_parents_concurrently_never_fails(root: Path) -> None:
    """Six tasks on two driver instances put and delete objects under one prefix: a
    delete prunes the now-empty parents while another put is creating them."""
    drivers = [FilesystemDriver(str(root), fsync=False) for _ in range(2)]
    errors: list[BaseException] = []

    async def churn(worker: int) -> None:
        driver = drivers[worker % 2]
        for round_ in range(300):
            path = f"uploads/{worker}-{round_ % 3}/data"
            try:
                await driver.put(path, b"x")
                await driver.delete(f"uploads/{worker}-{round_ % 3}")
            except Exception as exc:
                errors.append(exc)

    await asyncio.gather(*(churn(worker) for worker in range(6)))
    assert errors == []
    assert not (root / "uploads").exists() or list((root / "uploads").iterdir()) == []


async def test_deleting_a_prefix_while_objects_are_created_under_it_never_fails(
    root: Path,
) -> None:
    driver, other = FilesystemDriver(str(root), fsync=False), FilesystemDriver(str(root))
    for round_ in range(100):
        prefix = f"tags/t{round_}"
        for index in range(5):
            await driver.put(f"{prefix}/index/{index}/link", b"x")
        await asyncio.gather(
            driver.delete(prefix),
            other.put(f"{prefix}/index/new/link", b"y"),
            other.put(f"{prefix}/current/link", b"y"),
        )
        # Whatever was created during the delete may stay; nothing else does.
        left = {str(p.relative_to(root / prefix)) for p in (root / prefix).rglob("link")}
        assert left <= {"index/new/link", "current/link"}


async def test_concurrent_puts_in_one_directory_share_directory_fsyncs(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With sync = "file", group commit of directory fsyncs: 16 puts into one
    directory at once cost fewer directory fsyncs than puts, and each put returns only
    after a directory fsync that began after its rename (so its name is durable, as
    when every put fsynced alone)."""
    import threading
    import time

    from arca.storage.drivers import filesystem

    lock = threading.Lock()
    clock = [0]
    fsyncs: list[tuple[int, int]] = []  # (began, ended) on one logical clock
    renamed: dict[str, int] = {}
    real_replace, real_fsync_directory = os.replace, filesystem._fsync_directory

    def tick() -> int:
        with lock:
            clock[0] += 1
            return clock[0]

    def replace(source: str, destination: str) -> None:
        real_replace(source, destination)
        renamed[os.path.basename(destination)] = tick()

    def fsync_directory(directory: str) -> None:
        began = tick()
        time.sleep(0.05)  # a slow disk: later puts arrive while this runs
        real_fsync_directory(directory)
        fsyncs.append((began, tick()))

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(filesystem, "_fsync_directory", fsync_directory)
    driver = FilesystemDriver(str(root), sync="file")
    await driver.put("shared/first", b"x")  # the directory exists before the race
    fsyncs.clear()

    async def put(n: int) -> int:
        await driver.put(f"shared/o{n}", b"%d" % n)
        return tick()

    returned = await asyncio.gather(*(put(n) for n in range(16)))
    assert len(fsyncs) < 16
    for n, answered in enumerate(returned):
        assert any(renamed[f"o{n}"] < began and ended < answered for began, ended in fsyncs), n
    assert sorted(os.listdir(root / "shared")) == sorted(["first", *(f"o{n}" for n in range(16))])


@pytest.mark.parametrize(
    "path",
    [
        *("a/b", "a/b/new", "a/b/new/deeper", "a/out", "a/out/passwd", "a/out/none/x"),
        *("a/dangling", "a/dangling/y", "a/inner/z", "a/b/../out", "a/", ""),
    ],
)
async def test_the_fast_real_path_agrees_with_realpath(tmp_path: Path, path: str) -> None:
    """Where objects are allowed to be is decided by the real path: the quick way of
    finding it must give what os.path.realpath gives, symlinks and missing parts too."""
    from arca.storage.drivers.filesystem import _real_path

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "out").symlink_to("/etc")
    (tmp_path / "a" / "dangling").symlink_to("/nonexistent/x")
    (tmp_path / "a" / "inner").symlink_to(tmp_path / "a" / "b")
    full = os.path.join(tmp_path, path)
    assert _real_path(full) == os.path.realpath(full)


async def test_a_put_into_new_directories_killed_before_it_lands_leaves_nothing_listed(
    driver: FilesystemDriver, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag is a directory: a put killed after making the directories but before the
    object is in them must not leave the directory for tags/list to name."""
    await driver.put("repo/tags/old/current/link", b"old")

    class Killed(BaseException):
        pass

    def killed(source: str, destination: str) -> None:
        raise Killed  # no cleanup runs, as with SIGKILL

    monkeypatch.setattr(os, "rename", killed)
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(Killed):
        await driver.put("repo/tags/new/current/link", b"new")
    monkeypatch.undo()
    assert [name async for name in driver.list("repo/tags")] == ["old"]
    assert [info.path async for info in driver.walk("repo")] == ["repo/tags/old/current/link"]
    await driver.put("repo/tags/new/current/link", b"new")  # and pushed again, it lands
    assert await driver.get("repo/tags/new/current/link") == b"new"
    assert [name async for name in driver.list("repo/tags")] == ["new", "old"]


async def test_a_symlink_planted_in_a_directory_just_used_cannot_lead_outside(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    """Directories found free of symlinks are trusted for a moment; the object's own
    name is still checked on every call."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    await driver.put("repo/dir/ok", b"ok")
    assert await driver.get("repo/dir/ok") == b"ok"  # repo/dir is now trusted
    (root / "repo" / "dir" / "evil").symlink_to(outside / "secret")
    with pytest.raises(InvalidPath):
        await driver.get("repo/dir/evil")
    with pytest.raises(InvalidPath):
        await driver.put("repo/dir/evil", b"overwritten")
    assert (outside / "secret").read_bytes() == b"secret"


async def test_a_symlink_planted_below_a_directory_just_used_cannot_lead_outside(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    """Below a trusted directory each component is looked at: a symlinked directory
    (or a dangling symlink) planted there a moment later is followed by no call, for a
    path that exists beyond it and for one that does not."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_bytes(b"secret")
    await driver.put("repo/dir/ok", b"ok")
    assert await driver.get("repo/dir/ok") == b"ok"  # repo and repo/dir are now trusted
    (root / "repo" / "dir" / "evil").symlink_to(outside)
    (root / "repo" / "dir" / "dangling").symlink_to(outside / "planted")
    for path in ("repo/dir/evil/secret", "repo/dir/evil/sub/new", "repo/dir/evil/none/x/y"):
        with pytest.raises(InvalidPath):
            await driver.get(path)
        with pytest.raises(InvalidPath):
            await driver.exists(path)
        with pytest.raises(InvalidPath):
            await driver.stat(path)
        with pytest.raises(InvalidPath):
            await driver.put(path, b"overwritten")
    with pytest.raises(InvalidPath):
        await driver.put("repo/dir/dangling", b"planted")
    with pytest.raises(InvalidPath):
        await driver.put("repo/dir/dangling/x", b"planted")
    assert sorted(p.name for p in outside.iterdir()) == ["secret", "sub"]
    assert list((outside / "sub").iterdir()) == []
    assert (outside / "secret").read_bytes() == b"secret"


async def test_a_new_path_under_a_symlink_out_of_the_root_is_refused(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    """A path whose missing part lies beyond a symlink out of the root is refused,
    whether its directories were checked a moment ago or never."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(InvalidPath):
        await driver.put("link/tags/new/current/link", b"new")  # nothing trusted yet
    await driver.put("repo/x", b"x")  # the root is trusted now
    (root / "repo" / "link").symlink_to(outside)
    for path in ("link/new", "link/tags/new/current/link", "repo/link/a/b", "repo/link/a"):
        with pytest.raises(InvalidPath):
            await driver.put(path, b"new")
        assert not await _exists_or_refused(driver, path)
    assert list(outside.iterdir()) == []


async def _exists_or_refused(driver: FilesystemDriver, path: str) -> bool:
    try:
        return await driver.exists(path)
    except InvalidPath:
        return False


async def test_what_the_root_check_saw_answers_like_the_filesystem(
    driver: FilesystemDriver, root: Path
) -> None:
    """`get`, `stat` and `exists` reuse what the root check found (missing, a file, a
    directory, a file where a directory would be) and answer as the filesystem does,
    also once the path is trusted and when it changed since."""
    await driver.put("repo/a/file", b"12345")
    for _ in range(2):  # first checked, then trusted
        assert await driver.exists("repo/a/file")
        assert (await driver.stat("repo/a/file")).size == 5
        assert await driver.get("repo/a/file") == b"12345"
        for missing in ("repo/a/none", "repo/b/c/d", "repo/a/file/below", "repo/a"):
            assert not await driver.exists(missing)
            with pytest.raises(PathNotFound):
                await driver.stat(missing)
            with pytest.raises(PathNotFound):
                await driver.get(missing)
    await driver.put("repo/b/c/d", b"late")  # missing a moment ago, there now
    assert await driver.exists("repo/b/c/d")
    assert await driver.get("repo/b/c/d") == b"late"
    (root / "repo" / "a" / "file").unlink()
    assert not await driver.exists("repo/a/file")


async def test_a_put_lands_when_its_directory_changed_after_the_root_check(
    driver: FilesystemDriver, root: Path
) -> None:
    """A put is told what the root check saw (a missing directory, an existing object)
    and a concurrent request may have changed that since: made the directory, with
    an object in it, or pruned it. The put still lands and keeps the other object."""
    await driver.put("repo/tags/a/current/link", b"a")
    # The check saw tags/b missing; another request has made it since, object inside.
    full = str(root / "repo/tags/b/current/link")
    (root / "repo/tags/b/current").mkdir(parents=True)
    (root / "repo/tags/b/current/other").write_bytes(b"other")
    await asyncio.to_thread(driver._put, full, b"b", False, True, str(root / "repo/tags/b"))
    assert await driver.get("repo/tags/b/current/link") == b"b"
    assert await driver.get("repo/tags/b/current/other") == b"other"
    # The check saw the object there; a delete has pruned its directories since.
    await driver.delete("repo/tags/a/current/link")
    full = str(root / "repo/tags/a/current/link")
    await asyncio.to_thread(driver._put, full, b"again", False, True, None, True)
    assert await driver.get("repo/tags/a/current/link") == b"again"
    assert [name async for name in driver.list("repo/tags")] == ["a", "b"]


async def test_dot_dot_cannot_climb_out_of_the_root_even_past_trusted_directories(
    driver: FilesystemDriver, root: Path, tmp_path: Path
) -> None:
    """The wrapper's grammar refuses `..`; the driver's own check must too, when the
    directories on the way were checked a moment ago (trusted) as when not."""
    (tmp_path / "outside").mkdir()
    await driver.put("repo/dir/ok", b"ok")  # the root, repo and repo/dir are trusted now
    for path in ("../outside/x", "repo/../../outside/x", "repo/dir/../../../outside/x", "repo/.."):
        with pytest.raises(InvalidPath):
            await driver.put(path, b"escaped")
        with pytest.raises(InvalidPath):
            await driver.exists(path)
    assert list((tmp_path / "outside").iterdir()) == []


def _age(directory: Path) -> None:
    """Make a directory look unchanged for a minute (as if listed long after its last change)."""
    old = os.stat(directory).st_mtime - 60
    os.utime(directory, (old, old))


async def test_a_remembered_big_listing_still_shows_every_later_change(
    driver: FilesystemDriver, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tags = [f"t{n:04d}" for n in range(300)]
    for tag in tags:
        (root / "repo" / "tags" / tag).mkdir(parents=True)
    _age(root / "repo" / "tags")
    assert await driver.list_page("repo/tags", None, 1000) == tags
    listed: list[str] = []
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        listed.append(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    assert await driver.list_page("repo/tags", "t0100", 2) == ["t0101", "t0102"]
    assert [name async for name in driver.list("repo/tags")] == tags
    assert listed == []  # answered from the remembered listing
    await driver.put("repo/tags/t9999/current/link", b"x")
    assert (await driver.list_page("repo/tags", "t0298", 10)) == ["t0299", "t9999"]
    await driver.delete("repo/tags/t0000")
    assert (await driver.list_page("repo/tags", None, 1)) == ["t0001"]
    assert len(listed) == 2  # each change was seen, by listing again


async def test_a_listing_of_a_directory_changed_a_moment_ago_is_not_remembered(
    driver: FilesystemDriver, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A change in the same clock tick as the one before keeps the directory's time, so
    # only a directory unchanged for a while may be answered from memory.
    (root / "busy").mkdir()
    for n in range(300):
        (root / "busy" / f"{n:04d}").write_bytes(b"x")
    calls = [0]
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        calls[0] += 1
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    for _ in range(3):
        assert len(await driver.list_page("busy", None, 1000)) == 300
    assert calls[0] == 3


async def test_a_big_write_starts_its_writeback_before_the_final_fsync(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that closing a 512 MiB upload does not wait for all of it to reach the disk
    (storage/drivers/writeback.py); the bytes are the same either way."""
    from arca.storage.drivers import filesystem, writeback

    if sys.platform.startswith("linux"):
        assert writeback.available(), "sync_file_range not found in libc"
    started: list[tuple[int, int]] = []

    def recording(fd: int, offset: int) -> None:
        started.append((offset, os.fstat(fd).st_size))
        writeback.start_writeback(fd, offset)

    monkeypatch.setattr(filesystem, "start_writeback", recording)
    for durable, expected in ((True, True), (False, False)):
        started.clear()
        driver = FilesystemDriver(str(root / str(durable)), fsync=durable)
        piece = os.urandom(1 << 20)
        writer = await driver.writer("uploads/u/data")
        for _ in range(20):
            await writer.write(piece)
        await writer.truncate(3 << 20)
        for _ in range(10):
            await writer.write(piece)
        during = list(started)
        await writer.close()
        assert (root / str(durable) / "uploads/u/data").read_bytes() == piece * 3 + piece * 10
        assert bool(during) is expected
        # Each range starts where the last one ended (or where truncation cut it), and
        # covers at least WRITEBACK_BYTES.
        ends = [0]
        for offset, size in during:
            assert offset <= ends[-1]
            assert size - offset >= writeback.WRITEBACK_BYTES
            ends.append(size)
        await driver.close()


async def test_a_writer_fsyncs_in_the_write_pool_not_the_default_executor(
    driver: FilesystemDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync waits on the disk: eight uploads closing at once must not take every
    thread of the default executor, which hashes and writes the other uploads' blocks."""
    import threading

    threads: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        threads.append(threading.current_thread().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    writer = await driver.writer("uploads/u/data")
    await writer.write(b"x" * 1000)
    await writer.commit()
    assert threads, "nothing was fsynced"
    assert all(name.startswith("arca-write") for name in threads), threads


async def test_a_move_into_new_directories_fsyncs_every_directory_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob moved into place makes `blobs/sha256/ab/<hex>/`: the new directories are
    entries of their parents, so each parent up to the one that existed is fsynced, or
    power loss could leave an acknowledged blob's directory unnamed."""
    driver = FilesystemDriver(str(tmp_path))
    await driver.put("uploads/u1/data", b"bytes")
    await driver.put("blobs/keep", b"x")  # `blobs/` exists; what is below it does not
    from arca.storage.drivers import filesystem

    synced: list[str] = []
    real = filesystem._fsync_directory

    def fsync_directory(directory: str) -> None:
        synced.append(os.path.relpath(directory, os.path.realpath(tmp_path)))
        real(directory)

    monkeypatch.setattr(filesystem, "_fsync_directory", fsync_directory)
    await driver.move("uploads/u1/data", "blobs/sha256/ab/abcd/data")
    assert {"blobs/sha256/ab/abcd", "blobs/sha256/ab", "blobs/sha256", "blobs"} <= set(synced)
    assert "." not in synced  # the root's entry for `blobs/` was durable already

    synced.clear()
    await driver.put("uploads/u2/data", b"more")
    await driver.move("uploads/u2/data", "blobs/sha256/ab/abcd/data2")
    assert "blobs/sha256/ab" not in synced  # nothing new made: the directory alone
    assert "blobs/sha256/ab/abcd" in synced


async def test_an_unsynced_put_fsyncs_nothing_and_a_put_still_fsyncs_file_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`put_unsynced` (upload session state) skips the fsyncs, not the temporary file
    and rename: a reader still sees the old or the new object, never a part (sync =
    "file"; the group commit's syncfs is tested below)."""
    from arca.storage.drivers import filesystem

    driver = FilesystemDriver(str(tmp_path), sync="file")
    await driver.put("uploads/exists/keep", b"x")
    calls: list[str] = []
    real_fsync, real_directory = os.fsync, filesystem._fsync_directory

    def fsync(fd: int) -> None:
        calls.append("file")
        real_fsync(fd)

    def fsync_directory(directory: str) -> None:
        calls.append("directory")
        real_directory(directory)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(filesystem, "_fsync_directory", fsync_directory)
    replaced: list[str] = []
    real_replace = os.replace

    def replace(source: str, destination: str) -> None:
        replaced.append(os.path.basename(source))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    await driver.put_unsynced("uploads/exists/state", b"one")  # an existing directory
    await driver.put_unsynced("uploads/fresh/state", b"two")  # new directories
    await driver.put_unsynced("uploads/exists/state", b"three")
    assert calls == []
    assert replaced
    assert all(name.endswith(".tmp~") for name in replaced)
    assert await driver.get("uploads/exists/state") == b"three"
    assert await driver.get("uploads/fresh/state") == b"two"
    await driver.put("uploads/exists/state", b"four")
    assert "file" in calls
    assert "directory" in calls


async def test_a_small_blob_starts_its_writeback_before_its_second_block_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4 MiB push arrives as two 2 MiB blocks: the first block's writeback starts
    as soon as it is written, so the fsync at close is left with the second."""
    from arca.storage.drivers import filesystem, writeback

    started: list[tuple[int, int]] = []  # (from offset, file size then)

    def recording(fd: int, offset: int) -> None:
        started.append((offset, os.fstat(fd).st_size))
        writeback.start_writeback(fd, offset)

    monkeypatch.setattr(filesystem, "start_writeback", recording)
    driver = FilesystemDriver(str(tmp_path))
    block = os.urandom(2 << 20)
    writer = await driver.writer("uploads/u/data")
    await writer.write(block)
    assert started == [(0, len(block))]
    await writer.write(block)
    await writer.commit()
    assert (tmp_path / "uploads/u/data").read_bytes() == block * 2


async def test_concurrent_puts_share_syncfs_calls_and_if_absent_has_one_winner(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit (sync = "group"): 40 puts at once, new directories and existing
    ones, and 8 create-only puts of one path, cost far fewer syncfs than puts; all land
    whole, exactly one create-only put wins, and none is answered before a syncfs
    that began after its rename ended."""
    import threading

    from arca.storage.drivers import filesystem

    if not filesystem.SYNCFS_AVAILABLE:
        pytest.skip("no syncfs")
    driver = FilesystemDriver(str(root), sync="group")
    await driver.put("shared/first", b"x")
    lock = threading.Lock()
    clock = [0]
    syncs: list[tuple[int, int]] = []
    renamed: dict[str, int] = {}
    real_syncfs, real_replace, real_rename = filesystem._syncfs, os.replace, os.rename

    def tick() -> int:
        with lock:
            clock[0] += 1
            return clock[0]

    def syncfs(fd: int) -> None:
        began = tick()
        real_syncfs(fd)
        syncs.append((began, tick()))

    def replace(source: str, destination: str) -> None:
        real_replace(source, destination)
        renamed[destination] = tick()

    def rename(source: str, destination: str) -> None:
        real_rename(source, destination)
        renamed[destination] = tick()

    monkeypatch.setattr(filesystem, "_syncfs", syncfs)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)

    async def put(path: str, data: bytes, if_absent: bool = False) -> tuple[str, int | None]:
        try:
            await driver.put(path, data, if_absent=if_absent)
        except AlreadyExists:
            return path, None
        return path, tick()

    paths = [f"shared/o{n}" for n in range(20)] + [f"new/t{n}/current/link" for n in range(20)]
    answers = await asyncio.gather(
        *(put(path, path.encode()) for path in paths),
        *(put("once/link", b"%d" % n, if_absent=True) for n in range(8)),
    )
    assert len(syncs) < 20, syncs
    for path in paths:
        assert await driver.get(path) == path.encode()
    winners = [answer for path, answer in answers if path == "once/link" and answer is not None]
    assert len(winners) == 1
    assert await driver.get("once/link") in {b"%d" % n for n in range(8)}
    for path, answered in answers[:20]:
        full = os.path.join(os.path.realpath(root), path)
        assert answered is not None
        assert any(renamed[full] < began and ended < answered for began, ended in syncs), path
    assert [name async for name in driver.list("new")] == sorted(f"t{n}" for n in range(20))
    leftovers = [p for p in root.rglob("*") if p.name.endswith("~")]
    assert leftovers == []


@pytest.mark.parametrize("failing", [1, 2])
async def test_a_failed_syncfs_fails_every_put_of_its_batch(
    root: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """syncfs reports the filesystem's writeback errors: every put of that batch fails
    (StorageError); after a failed first syncfs no new object is visible and no
    temporary file is left; after a failed second one the client is told to retry.
    A first put holds the committer in its syncfs while the others queue, so they all
    make the next batch, the one that fails."""
    import errno
    import threading

    from arca.storage.driver import StorageError
    from arca.storage.drivers import filesystem

    if not filesystem.SYNCFS_AVAILABLE:
        pytest.skip("no syncfs")
    driver = FilesystemDriver(str(root), sync="group")
    await driver.put("d/old", b"old")
    real_syncfs = filesystem._syncfs
    calls = [0]
    holding, release = threading.Event(), threading.Event()

    def syncfs(fd: int) -> None:
        calls[0] += 1
        if calls[0] == 1:  # the gate put's batch: wait until the others are queued
            holding.set()
            release.wait(10)
        if calls[0] == 2 + failing:
            raise OSError(errno.EIO, "syncfs: Input/output error")
        real_syncfs(fd)

    monkeypatch.setattr(filesystem, "_syncfs", syncfs)
    gate = asyncio.ensure_future(driver.put("gate", b"g"))
    assert await asyncio.to_thread(holding.wait, 10)
    paths = ["d/old", "d/a", "e/f/g"] + [f"d/n{n}" for n in range(5)]
    puts = asyncio.gather(*(driver.put(path, b"new") for path in paths), return_exceptions=True)
    for _ in range(100):
        await asyncio.sleep(0)
        if filesystem._committer._queue.qsize() == len(paths):
            break
    assert filesystem._committer._queue.qsize() == len(paths)
    release.set()
    await gate
    results = await puts
    assert calls[0] == 2 + failing
    assert all(isinstance(r, StorageError) for r in results), results
    if failing == 1:
        assert await driver.get("d/old") == b"old"
        assert not await driver.exists("d/a")
        assert not await driver.exists("e/f/g")
        assert [p for p in root.rglob("*") if p.name.endswith("~")] == []
    monkeypatch.undo()
    await driver.put("d/a", b"again")  # and the next batch works
    assert await driver.get("d/a") == b"again"


_CRASHING_CHILD = """
import asyncio, os, signal, sys
from arca.storage.drivers import filesystem
from arca.storage.drivers.filesystem import FilesystemDriver

root, kill_at = sys.argv[1], int(sys.argv[2])
calls = [0]
real = filesystem._syncfs

def syncfs(fd):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    real(fd)

async def main():
    driver = FilesystemDriver(root, sync="group")
    for n in range(3):  # acknowledged before the crash (two syncfs each)
        await driver.put(f"acked/o{n}", b"acked %d" % n)
        print(f"acked/o{n}", flush=True)
    filesystem._syncfs = syncfs
    await asyncio.gather(
        *(driver.put(f"batch/o{n}", b"whole %d" % n) for n in range(8)),
        *(driver.put(f"new/t{n}/current/link", b"whole t%d" % n) for n in range(4)),
    )
    print("not killed", flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("kill_at", [1, 2])
async def test_a_process_killed_in_a_batch_keeps_acknowledged_objects_and_no_half_ones(
    tmp_path: Path, kill_at: int
) -> None:
    """SIGKILL at the batch's first syncfs (temporaries written, nothing renamed) or at
    its second (renamed, not yet acknowledged): after restart every acknowledged object
    is there whole, what is visible of the batch is whole, and no temporary is listed."""
    import subprocess

    from arca.storage.drivers import filesystem

    if not filesystem.SYNCFS_AVAILABLE:
        pytest.skip("no syncfs")
    root = tmp_path / "root"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_CHILD, str(root), str(kill_at)],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr
    acked = child.stdout.decode().split()
    assert acked == ["acked/o0", "acked/o1", "acked/o2"]
    driver = FilesystemDriver(str(root))
    for n, path in enumerate(acked):
        assert await driver.get(path) == b"acked %d" % n
    seen: list[str] = []
    for prefix in ("batch", "new"):
        seen += [info.path async for info in driver.walk(prefix)]
    for path in seen:
        name = path.rsplit("/", 1)[-1] if path.startswith("batch") else path.split("/")[1]
        assert (await driver.get(path)) == b"whole " + name.lstrip("o").encode(), path
    if kill_at == 1:
        assert seen == []  # nothing renamed before the first syncfs
    tags = [name async for name in driver.list("new")]
    assert all(not name.endswith("~") for name in tags)
    assert sorted(tags) == sorted(path.split("/")[1] for path in seen if path.startswith("new/"))


_RACING_PROCESS = """
import asyncio, json, sys
from arca.storage.driver import AlreadyExists
from arca.storage.drivers.filesystem import FilesystemDriver

root, me, names = sys.argv[1], sys.argv[2], int(sys.argv[3])
big = me.encode() * (100 * 1024 // len(me))  # over the inline-staging size: the committer stages it

async def create(driver, n):
    try:
        await driver.put(f"once/o{n}", b"created by " + me.encode(), if_absent=True)
    except AlreadyExists:
        return None
    return n

async def main():
    driver = FilesystemDriver(root, sync="group")
    won = await asyncio.gather(
        *(create(driver, n) for n in range(names)),
        *(driver.put(f"shared/o{n}", big) for n in range(names)),
        *(driver.put(f"new/t{n}/current/link", b"tag by " + me.encode()) for n in range(names)),
    )
    print(json.dumps([n for n in won[:names] if n is not None]))

asyncio.run(main())
"""


async def test_processes_group_committing_on_the_same_names_lose_nothing(root: Path) -> None:
    """Four processes (four committers, as `--workers 4` runs) put the same names at
    once: create-only puts have exactly one winner per name across processes, whose
    bytes are stored; overwritten objects (big enough that the committer stages them)
    and objects in directories made at the same moment end whole, from one process; no
    temporary or staging directory is left."""
    import json
    import subprocess

    from arca.storage.drivers import filesystem

    if not filesystem.SYNCFS_AVAILABLE:
        pytest.skip("no syncfs")
    names, processes = 24, [f"p{n}" for n in range(4)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    racing = [
        subprocess.Popen(
            [sys.executable, "-c", _RACING_PROCESS, str(root), me, str(names)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for me in processes
    ]
    winners: dict[int, str] = {}
    for me, process in zip(processes, racing, strict=True):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        for n in json.loads(out):
            assert n not in winners, f"o{n} created by {winners[n]} and {me}"
            winners[n] = me
    assert sorted(winners) == list(range(names))
    driver = FilesystemDriver(str(root))
    for n in range(names):
        assert await driver.get(f"once/o{n}") == b"created by " + winners[n].encode()
        shared = await driver.get(f"shared/o{n}")
        assert shared in {me.encode() * (100 * 1024 // len(me)) for me in processes}
        assert await driver.get(f"new/t{n}/current/link") in {
            b"tag by " + me.encode() for me in processes
        }
    assert [name async for name in driver.list("new")] == sorted(f"t{n}" for n in range(names))
    assert [p for p in root.rglob("*") if p.name.endswith("~")] == []
