"""Objects as files under one root directory: the embedded, single-host driver.

The object at `a/b/c` is the file `<root>/a/b/c`; prefixes are directories. Names
ending in `~` are this driver's temporary files (`check_path` refuses them as object
names), so `list` and `walk` skip them.

- `put` writes a temporary file in the destination's directory, fsyncs it, then
  `os.replace`s it into place (or `os.link`s it for `if_absent`, which fails if the
  destination exists, atomically across processes) and fsyncs the directory.
- A writer's bytes live in the file at its path, appended as they come; `close()`
  and `commit()` fsync it. A fresh writer gets a new file (temp + rename), so two
  writers of one path never interleave: the one created last owns the path.
- Every path is resolved under the root, and its real path (symlinks followed) must
  stay there: a symlink planted inside the root cannot lead a read or write outside.
- Reads run in a worker thread in 1 MiB chunks; files up to `_SMALL_FILE` bytes and
  metadata calls (open, stat) run on the event loop, where they take microseconds
  instead of a thread hop's ~100 µs (measurements in docs/storage.md).
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import queue
import secrets
import shutil
import stat
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, TypeVar

from arca.storage.driver import (
    CHUNK_SIZE,
    AlreadyExists,
    BackendUnavailable,
    Driver,
    FileWriter,
    InvalidOffset,
    InvalidPath,
    ObjectInfo,
    PathNotFound,
    StorageError,
)
from arca.storage.drivers.writeback import WRITEBACK_BYTES, start_writeback
from arca.storage.options import DriverOptions, OptionError

_SMALL_FILE = 64 * 1024
# A prefix's lock file (hidden like every `~` name) and how often a waiter retries it.
_LOCK_FILE = "lock~"
_LOCK_POLL = 0.005
# A write at least this big, with nothing buffered, goes to the file without a copy.
_DIRECT_WRITE = 256 * 1024
# A directory whose entries take up to this much is listed on the event loop (~0.4 ms
# per 1,000 names; a thread hop alone costs ~0.2 ms here); a bigger one in a thread.
_SMALL_DIRECTORY = 64 * 1024
"""Files up to this size are read on the event loop (links, state, metadata)."""

_LISTED_NAMES = (256, 100_000)
_LISTINGS = 32
_QUIET_NS = 2_000_000_000
"""Directories with this many names (at least, at most) are remembered, sorted (at most
`_LISTINGS` of them), while their modification time stays what it was: tags/list of a
1,000-tag repository is then one `stat` and a slice instead of a `listdir` and a sort
of 1,000 names (~0.5 ms). Only a directory unchanged for 2 s is remembered: a change
within the timestamp's granularity (a clock tick, or a second on coarse filesystems)
of the one before could leave the time as it was; a change made after a listing is
remembered gets a later time, so the next `stat` sees it."""

_RETRIES = 20
"""How often to recreate a parent directory a concurrent delete pruned under us. Each
retry needs another prune to win the same microseconds, yet threads of one process can
fall into step: six writers and deleters on one prefix (the races test) lost 20 in a row
about one run in four until `_with_parents` began to pause between attempts."""
_RETRY_PAUSE = 0.0001
"""Seconds, times the attempt, that `_with_parents` waits after the second lost race."""

_STAGE_INLINE_BYTES = 64 * 1024
"""A group-committed `put` of at most this many bytes writes its temporary file (phase
1) on the event loop, not in the committer. Creating a small file is tens of
microseconds of system calls, but in the committer each of them also had to win the
GIL back from the event loop (busy with requests), so staging took ~65 % of the
committer's time and the committer, 96 % busy, was what tag PUTs queued on. Staged on
the loop, tag PUTs with 8 clients went from 273-359 to 340-466 per second, alternating
rounds (docs/benchmarks.md, "Fifth round"). Bigger objects are still staged by the
committer, so the loop never copies megabytes."""

_WRITE_THREADS = 64
"""Threads for writes that fsync. An fsync waits on the disk, not the CPU, and
concurrent fsyncs on one filesystem share a journal commit (ext4, xfs: the kernel's
group commit), so 8 clients each waiting on a few fsyncs should not queue behind the
default executor's 6 threads (2 cores + 4): the more fsyncs in flight, the fewer
commits per write (docs/benchmarks.md, "Tag PUTs")."""

_TRUSTED_SECONDS = 0.5
_TRUSTED_PATHS = 4096
_WALKED = 3
"""A path (or directory) found free of symlinks is trusted for half a second (at most
this many are remembered): a manifest PUT resolves ~18 paths, several the same as the
PUT before (`gc/sweeping`, the layers' links) and most in directories it just used,
and a resolution costs several system calls (docs/storage.md, "Staying inside the
root"). Below a trusted directory up to `_WALKED` components are `lstat`ed one by one
(one system call each, fewer when one is missing); further down, the full check."""

_T = TypeVar("_T")

_write_pool: ThreadPoolExecutor | None = None
_write_pool_lock = threading.Lock()


def _writes() -> ThreadPoolExecutor:
    global _write_pool
    with _write_pool_lock:
        if _write_pool is None:
            _write_pool = ThreadPoolExecutor(_WRITE_THREADS, thread_name_prefix="arca-write")
        return _write_pool


class _WriteThreads:
    """Threads for the small writes that fsync (`put`, `delete`, `move`), handed work
    through one `queue.SimpleQueue` and answering with `call_soon_threadsafe`.

    `run_in_executor` on a ThreadPoolExecutor was ~14 % of the process's Python time
    under tag PUTs (py-spy, GIL held only): each call makes a concurrent future (with
    its own `threading.Condition`), takes the executor's locks and semaphore, and
    chains the future to an asyncio one. Here a call is one asyncio future and one
    queue item. A thread is started while there are more calls not yet done than
    threads (up to `_WRITE_THREADS`), so no call waits for a thread before then.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._threads = 0
        self._unfinished = 0
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()

    def submit(self, function: Callable[..., _T], args: tuple[Any, ...]) -> asyncio.Future[_T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        with self._lock:
            self._unfinished += 1
            start = self._unfinished > self._threads and self._threads < self._size
            if start:
                self._threads += 1
                name = f"arca-write-small_{self._threads}"
        if start:
            threading.Thread(target=self._work, name=name, daemon=True).start()
        self._queue.put((loop, future, function, args))
        return future

    def _work(self) -> None:
        while True:
            loop, future, function, args = self._queue.get()
            try:
                outcome = (True, function(*args))
            except BaseException as error:  # handed to the caller, as an executor does
                outcome = (False, error)
            with self._lock:
                self._unfinished -= 1
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, outcome)
            del loop, future, function, args, outcome


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.cancelled():
        return  # the caller left; the write ran to its end all the same
    if outcome[0]:
        future.set_result(outcome[1])
    else:
        future.set_exception(outcome[1])


_small_writes = _WriteThreads(_WRITE_THREADS)


def _find_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_libc_syncfs = _find_syncfs()
SYNCFS_AVAILABLE = _libc_syncfs is not None


def _syncfs(fd: int) -> None:
    """Flush the whole filesystem holding `fd`; raises its writeback error (Linux >= 5.8
    reports errors since the descriptor was opened)."""
    assert _libc_syncfs is not None
    if _libc_syncfs(fd) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"syncfs: {os.strerror(number)}")


class _Commit:
    """One durable `put` waiting for the committer."""

    __slots__ = (
        *("data", "driver", "full", "future", "if_absent", "loop", "missing"),
        *("outcome", "seen", "staged", "temporary"),
    )

    def __init__(
        self,
        driver: FilesystemDriver,
        full: str,
        data: bytes,
        if_absent: bool,
        missing: str | None,
        seen: bool,
    ) -> None:
        self.driver, self.full, self.data, self.if_absent = driver, full, data, if_absent
        self.missing, self.seen = missing, seen
        self.temporary: str | None = None
        self.staged: tuple[str, str, str] | None = None  # staging, its final name, the file
        self.outcome: tuple[bool, Any] | None = None
        self.loop: asyncio.AbstractEventLoop
        self.future: asyncio.Future[None]


class _GroupCommitter:
    """Group commit of durable small `put`s, on one thread: a put joins the next batch,
    which is everything queued when the committer becomes free (no timer).

    A batch: phase 1 writes every temporary file (and staging directory) not
    written yet (a small put's caller writes its own: `_STAGE_INLINE_BYTES`); one
    `syncfs` of the root's filesystem makes them durable; phase 2 renames / links
    them into place; a second `syncfs` makes the names durable; then every caller is
    answered, one `call_soon_threadsafe` per event loop. So what a reader can see was
    durable before it became visible, and nothing is acknowledged before its name is
    durable: the guarantee of fsync-before-rename, for two syncfs per batch instead of
    ~2.5 fsyncs per object. A failed first syncfs fails every put of the batch (their
    temporaries removed, nothing renamed); a failed second one fails them all too,
    though their objects may be visible: the client retries (a put is idempotent).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Commit] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False

    def submit(self, commit: _Commit) -> asyncio.Future[None]:
        commit.loop = asyncio.get_running_loop()
        commit.future = commit.loop.create_future()
        self._queue.put(commit)
        if not self._started:
            with self._lock:
                if not self._started:
                    self._started = True
                    threading.Thread(target=self._run, name="arca-commit", daemon=True).start()
        return commit.future

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                _commit_batch(batch)
            except BaseException as error:  # never leave a caller waiting
                for commit in batch:
                    if commit.outcome is None:
                        commit.outcome = (False, error)
            _answer(batch)
            del batch


def _commit_batch(batch: builtins.list[_Commit]) -> None:
    for commit in batch:
        if commit.temporary is not None or commit.staged is not None:
            continue  # staged by its caller (_STAGE_INLINE_BYTES)
        try:
            commit.driver._stage(commit)
        except BaseException as error:
            commit.outcome = (False, error)
    live = [commit for commit in batch if commit.outcome is None]
    if not live:
        return
    try:
        for fd in {commit.driver._root_fd for commit in live}:
            _syncfs(fd)
    except OSError as error:
        for commit in live:
            commit.driver._unstage(commit)
            commit.outcome = (False, OSError(error.errno, f"{error.strerror} (before renames)"))
        return
    for commit in live:
        try:
            commit.driver._publish(commit)
            commit.outcome = (True, None)
        except BaseException as error:
            commit.outcome = (False, error)
    done = [commit for commit in live if commit.outcome == (True, None)]
    try:
        for fd in {commit.driver._root_fd for commit in done}:
            _syncfs(fd)
    except OSError as error:
        for commit in done:
            commit.outcome = (False, OSError(error.errno, f"{error.strerror} (after renames)"))


def _answer(batch: builtins.list[_Commit]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, builtins.list[tuple[Any, Any]]] = {}
    for commit in batch:
        by_loop.setdefault(commit.loop, []).append((commit.future, commit.outcome))
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_settle_all, answers)


def _settle_all(answers: builtins.list[tuple[asyncio.Future[Any], tuple[bool, Any]]]) -> None:
    for future, outcome in answers:
        _settle(future, outcome)


_committer = _GroupCommitter()


def _after_fork() -> None:
    global _small_writes, _committer
    _small_writes = _WriteThreads(_WRITE_THREADS)  # a forked child has none of the threads
    _committer = _GroupCommitter()


os.register_at_fork(after_in_child=_after_fork)


async def _in_write_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking write (which fsyncs) in a write thread; like `asyncio.to_thread`,
    a cancelled caller leaves the thread to finish what it started."""
    return await _small_writes.submit(function, args)


class _DirectorySyncs:
    """Group commit for directory fsyncs: one fsync serves every caller whose change
    to the directory (a rename, a link) was made before that fsync began.

    A caller takes a ticket after its change. If no fsync of the directory is running,
    it runs one covering every ticket taken so far; otherwise it waits for the running
    one to end (that one may have begun before its change) and then, unless a later
    fsync already covered it, runs the next one for everyone waiting. So N concurrent
    creations in one directory (event commits, index entries, blobs of one shard)
    cost about two fsyncs instead of N, and none returns before a directory fsync that
    began after its own change has finished: the same guarantee as fsyncing alone.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._state: dict[str, list[int]] = {}
        """directory -> [tickets taken, tickets covered by a finished fsync, running]"""

    def sync(self, directory: str) -> None:
        with self._condition:
            state = self._state.setdefault(directory, [0, 0, 0])
            state[0] += 1
            ticket = state[0]
            try:
                while state[1] < ticket:
                    if state[2]:
                        self._condition.wait()
                        continue
                    state[2], covers = 1, state[0]
                    self._condition.release()
                    try:
                        _fsync_directory(directory)
                    finally:
                        self._condition.acquire()
                        state[2] = 0
                        self._condition.notify_all()
                    state[1] = max(state[1], covers)
            finally:
                if state[1] >= state[0] and not state[2] and self._state.get(directory) is state:
                    # Nobody else waits: forget the directory (the map stays small).
                    del self._state[directory]


@contextlib.contextmanager
def _map_errors(path: str, *, writing: bool = False) -> Iterator[None]:
    """The one place where OSError becomes the contract's exceptions."""
    try:
        yield
    except FileExistsError as exc:
        raise AlreadyExists(path) from exc
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        if writing and not isinstance(exc, FileNotFoundError):
            raise StorageError(f"{path} conflicts with an existing object or prefix") from exc
        raise PathNotFound(path) from exc
    except PermissionError as exc:
        raise BackendUnavailable(f"permission denied on {path}: {exc}") from exc
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise BackendUnavailable(f"read-only filesystem: {exc}") from exc
        if exc.errno == errno.ELOOP:
            raise InvalidPath(path) from exc
        raise StorageError(f"{path}: {exc}") from exc


_DEFAULT_SYNC = "group" if SYNCFS_AVAILABLE else "file"


def _check_sync(sync: str) -> str:
    """The `sync` setting, refused unless "file" or (where syncfs exists) "group"."""
    if sync not in ("group", "file"):
        raise OptionError("sync", 'must be "group" or "file"')
    if sync == "group" and not SYNCFS_AVAILABLE:
        raise OptionError("sync", '"group" needs syncfs (Linux)')
    return sync


@dataclass(frozen=True)
class FilesystemOptions(DriverOptions):
    root: str = "./data"
    fsync: bool = True
    sync: str = _DEFAULT_SYNC

    def __post_init__(self) -> None:
        if not self.root:
            raise OptionError("root", "must name a directory")
        _check_sync(self.sync)


class FilesystemDriver(Driver):
    name = "filesystem"
    options_type = FilesystemOptions

    def __init__(
        self, root: str, fsync: bool = True, sync: Literal["group", "file"] | str | None = None
    ) -> None:
        """`fsync=False` trades durability for write speed: after a power cut, objects
        written shortly before may be empty or missing (docs/storage.md). `sync`: how
        a durable `put` is made durable: "group" (default where syncfs exists) commits
        concurrent puts together with two syncfs of the root's filesystem per batch
        (`_GroupCommitter`), "file" fsyncs each file and directory."""
        self._durable = fsync
        self._group = fsync and _check_sync(_DEFAULT_SYNC if sync is None else sync) == "group"
        self._root_fd = -1
        self._directories = _DirectorySyncs()
        self._listings: OrderedDict[str, tuple[tuple[int, ...], tuple[str, ...]]] = OrderedDict()
        """Big directories' sorted names by real path, with the stat they were listed at."""
        self._trusted: dict[str, float] = {}
        """Paths whose real path was their path (or which were missing), until when."""
        self._trusted_directories: dict[str, float] = {}
        """Existing directories whose real path was their path, until when (`_lookup`)."""
        if os.path.exists(root) and not os.path.isdir(root):
            raise OptionError("root", f"{root!r} exists and is not a directory")
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as error:
            raise OptionError("root", f"{root!r} cannot be created: {error.strerror}") from None
        self._root = os.path.realpath(root)
        self._inside = os.path.join(self._root, "")  # "<root>/": what every real path starts with
        if self._group:
            self._root_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            weakref.finalize(self, _close_quietly, self._root_fd)

    async def close(self) -> None:
        pass  # the root's descriptor is closed with the driver (queued puts still use it)

    # -- reading -----------------------------------------------------------------------

    async def get(self, path: str) -> bytes:
        full, _, absent = self._lookup(path)
        if absent:
            raise PathNotFound(path)
        with _map_errors(path):
            fd, size = _open_regular_sized(full)
            try:
                if size <= _SMALL_FILE:
                    return _read_to_end(fd, size)
                return await _in_thread(_read_to_end, fd, size)
            finally:
                os.close(fd)

    async def open_read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        full = self._resolve(path)
        with _map_errors(path):
            fd = _open_regular(full)
        try:
            # The inode stays ours: a concurrent put replaces the name, not these bytes.
            size = os.fstat(fd).st_size
            if offset < 0 or offset > size:
                raise InvalidOffset(path, offset)
            end = size if length is None else min(size, offset + max(length, 0))
            position = offset
            while position < end:
                with _map_errors(path):
                    chunk = await _in_thread(
                        os.pread, fd, min(CHUNK_SIZE, end - position), position
                    )
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def local_file(self, path: str) -> BinaryIO:
        full = self._resolve(path)
        with _map_errors(path):
            fd = _open_regular(full)
        return os.fdopen(fd, "rb", buffering=0)

    async def stat(self, path: str) -> ObjectInfo:
        full, st, absent = self._lookup(path)
        if absent:
            raise PathNotFound(path)
        if st is None:  # (the check's lstat is the stat: it found no symlink there)
            with _map_errors(path):
                st = os.stat(full)
        if not stat.S_ISREG(st.st_mode):
            raise PathNotFound(path)
        return ObjectInfo(path, st.st_size, st.st_mtime)

    async def exists(self, path: str) -> bool:
        # `stat` without its exceptions: most paths asked about on a PUT are missing.
        full, st, absent = self._lookup(path)
        if absent:
            return False
        if st is None:
            try:
                st = os.stat(full)
            except (FileNotFoundError, NotADirectoryError):
                return False
            except OSError:
                with _map_errors(path):
                    raise
        return stat.S_ISREG(st.st_mode)

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        full, seen, absent = self._lookup(prefix)
        with _map_errors(prefix):
            names = () if absent else await self._names(full, seen)
        start = 0 if start_after is None else bisect.bisect_right(names, start_after)
        for index in range(start, len(names)):
            yield names[index]

    async def list_page(
        self, prefix: str, start_after: str | None, limit: int
    ) -> builtins.list[str]:
        full, seen, absent = self._lookup(prefix)
        with _map_errors(prefix):
            names = () if absent else await self._names(full, seen)
        start = 0 if start_after is None else bisect.bisect_right(names, start_after)
        return list(names[start : start + max(limit, 0)])

    async def _names(self, directory: str, seen: os.stat_result | None) -> tuple[str, ...]:
        """The sorted names in `directory` (none if it is missing), remembered for a
        big directory while it is unchanged (`_LISTED_NAMES`); `seen` is its stat if the
        root check just took it."""
        try:
            st = seen or os.stat(directory)
        except (FileNotFoundError, NotADirectoryError):
            return ()
        if not stat.S_ISDIR(st.st_mode):
            return ()
        version = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        known = self._listings.get(directory)
        if known is not None and known[0] == version:
            self._listings.move_to_end(directory)
            return known[1]
        if st.st_size > _SMALL_DIRECTORY:
            names = tuple(await _in_thread(_children, directory))
        else:
            names = tuple(_children(directory))
        fewest, most = _LISTED_NAMES
        if fewest <= len(names) <= most and st.st_mtime_ns < time.time_ns() - _QUIET_NS:
            self._listings[directory] = (version, names)
            self._listings.move_to_end(directory)
            if len(self._listings) > _LISTINGS:
                self._listings.popitem(last=False)
        elif known is not None:
            del self._listings[directory]
        return names

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        pending = [(self._resolve(prefix), prefix)]
        while pending:
            directory, relative = pending.pop()
            with _map_errors(prefix):
                entries = await asyncio.to_thread(_scan, directory)
            # Depth first in lexical order: deterministic, and memory is one directory.
            for name, is_dir, _, _ in reversed(entries):
                if is_dir:
                    pending.append((os.path.join(directory, name), f"{relative}/{name}"))
            for name, is_dir, size, modified in entries:
                if not is_dir:
                    yield ObjectInfo(f"{relative}/{name}", size, modified)

    # -- writing -----------------------------------------------------------------------

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        full, seen, missing = self._lookup(path)
        with _map_errors(path, writing=True):
            if self._group:
                commit = _Commit(self, full, data, if_absent, missing, seen is not None)
                if len(data) <= _STAGE_INLINE_BYTES:
                    self._stage(commit)
                await _committer.submit(commit)
                return
            await _in_write_thread(
                self._put, full, data, if_absent, True, missing, seen is not None
            )

    async def put_unsynced(self, path: str, data: bytes) -> None:
        """`put` without its fsyncs (of the file and of the directories it changes):
        the temporary file and the rename stay, so readers see the old object or the
        new one, never a part, as long as the machine stays up."""
        full = self._resolve(path)
        with _map_errors(path, writing=True):
            await _in_write_thread(self._put, full, data, False, False)

    async def delete(self, path: str) -> None:
        full = self._resolve(path)
        with _map_errors(path, writing=True):
            await _in_write_thread(self._delete, full)

    async def delete_if(self, path: str, expected: bytes) -> bool:
        full = self._resolve(path)
        with _map_errors(path, writing=True):
            return await _in_write_thread(self._delete_if, full, expected)

    async def move(self, source: str, destination: str) -> None:
        source_full = self._resolve(source)
        destination_full = self._resolve(destination)
        with _map_errors(source, writing=True):
            await _in_write_thread(self._move, source_full, destination_full)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        full = self._resolve(path)
        with _map_errors(path, writing=not append):  # resuming a directory: nothing to resume
            if append:
                fd = await _in_thread(_open_for_append, full, cleanup=os.close)
            else:
                fd = await _in_thread(self._create_in_place, full, cleanup=os.close)
            size = os.fstat(fd).st_size
        return _FilesystemWriter(self, path, full, fd, size, created=not append)

    @contextlib.asynccontextmanager
    async def lock(self, prefix: str) -> AsyncIterator[None]:
        """flock on `<prefix>/lock~`, polled so that a cancelled waiter leaves nothing
        behind (a thread blocked in flock could not be called back)."""
        directory = self._resolve(prefix)
        # O_NOFOLLOW: `lock~` is no object name, so the root check never looked at it,
        # and a symlink planted there must not make this create or open a file outside.
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        with _map_errors(prefix):
            fd = os.open(os.path.join(directory, _LOCK_FILE), flags, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_LOCK_POLL)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def check(self) -> None:
        with _map_errors(""):
            if not os.access(self._root, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "storage root is not writable", self._root)

    # -- helpers (the underscored sync ones run in a worker thread) -----------------------

    def _resolve(self, path: str) -> str:
        """`path` under the root; refuses one whose real path (symlinks followed) leaves it.

        The path's grammar was checked by the wrapper (storage/checked.py); this guards
        what only a filesystem has, symlinks planted in the root."""
        return self._lookup(path)[0]

    def _lookup(self, path: str) -> tuple[str, os.stat_result | None, str | None]:
        """`_resolve`, and what the check saw: the object's `lstat` (None where it did
        not look) and, if nothing is there, the first component of the path found
        missing (None otherwise), so that `stat`, `exists`, `get` and `put` need not
        ask the filesystem again.

        A manifest PUT resolves ~18 paths, most of them new (a tag's directory, a
        revision, index entries) in directories used a moment ago. So the check starts
        from the nearest ancestor found to be a directory free of symlinks in the last
        half second (`_TRUSTED_SECONDS`), at most `_WALKED` levels up, and `lstat`s only
        the components below it: a missing one ends the walk (nothing there to
        follow), a symlink anywhere sends the path to the full check (`_check`), which
        follows it and refuses it if it leads out of the root."""
        full = os.path.join(self._root, path)
        now = time.monotonic()
        if self._trusted.get(full, 0.0) > now:
            return full, None, None  # checked a moment ago
        directories = self._trusted_directories
        names: list[str] = []
        base = full
        while True:
            base, name = os.path.split(base)
            if name in ("", ".", "..") or len(names) == _WALKED:
                # (The grammar refuses `.` and `..`; the full check does too, alone.)
                return self._check(path, full, now)
            names.append(name)
            if directories.get(base, 0.0) > now:
                break
        found: os.stat_result | None = None
        for name in reversed(names):
            base = os.path.join(base, name)
            try:
                found = os.lstat(base)
            except (FileNotFoundError, NotADirectoryError):
                self._trust(full, now)
                return full, None, base  # nothing there, so nothing to follow
            except OSError:
                return self._check(path, full, now)  # let the full check say what is wrong
            if stat.S_ISLNK(found.st_mode):
                return self._check(path, full, now)
            if base != full and stat.S_ISDIR(found.st_mode):
                directories[base] = now + _TRUSTED_SECONDS
        self._trust(full, now)
        return full, found, None

    def _check(self, path: str, full: str, now: float) -> tuple[str, None, str | None]:
        """The full check: the real path of `full` must be under the root. Where it is
        `full` itself, the directories on the way are trusted for `_TRUSTED_SECONDS`."""
        real, missing = _real_path_and_missing(full)
        if not real.startswith(self._inside):
            raise InvalidPath(path)
        first_missing = None
        if real == full:
            self._trust(full, now)
            if missing >= 0:
                # Every existing directory on the way is free of symlinks: a symlink
                # would have made the real path differ (a missing part is just missing).
                directory = full
                for _ in range(max(missing, 1)):
                    directory = os.path.dirname(directory)
                directories = self._trusted_directories
                until = now + _TRUSTED_SECONDS
                while directory.startswith(self._inside):
                    directories[directory] = until
                    directory = os.path.dirname(directory)
                directories[self._root] = until
                if missing > 0:
                    first_missing = full
                    for _ in range(missing - 1):
                        first_missing = os.path.dirname(first_missing)
        elif missing > 0:
            first_missing = full  # (somewhere on the way: a symlink inside the root)
        return full, None, first_missing

    def _trust(self, full: str, now: float) -> None:
        if len(self._trusted) >= _TRUSTED_PATHS or len(self._trusted_directories) >= _TRUSTED_PATHS:
            self._trusted.clear()
            self._trusted_directories.clear()
        self._trusted[full] = now + _TRUSTED_SECONDS

    def _put(
        self,
        full: str,
        data: bytes,
        if_absent: bool,
        synced: bool = True,
        missing: str | None = None,
        seen: bool = False,
    ) -> None:
        """`missing` and `seen`: what the root check found a moment ago (`_lookup`),
        which spares looking for the directory again: the first component missing, or
        that the object was there (so was its directory). Either may have changed since
        (a concurrent create or prune), which the paths below handle as before."""
        durable = synced and self._durable
        directory = os.path.dirname(full)
        missing = _missing_directory(full, missing, seen)
        if missing is not None and self._put_in_new_directory(full, data, missing, durable):
            return
        for attempt in range(_RETRIES + 1):
            fd, temporary = self._create_temporary(directory)
            try:
                try:
                    _write_all(fd, data)
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                if if_absent:
                    os.link(temporary, full)  # fails with EEXIST: the atomic "create if absent"
                else:
                    os.replace(temporary, full)
                break
            except FileNotFoundError:
                # A concurrent delete of a prefix above took the temporary file with it:
                # this put comes after that delete, so write it again.
                if attempt == _RETRIES or os.path.exists(temporary):
                    raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
        if durable:
            self._sync_directory(directory)

    def _put_in_new_directory(
        self, full: str, data: bytes, missing: str, durable: bool = True
    ) -> bool:
        """Create the missing directories of `full` with the object already inside them,
        in one rename; False if a concurrent request created them first (the caller then
        writes into what it made).

        Creating the directories and then renaming the object into them leaves, after a
        kill in between, empty directories, and where a prefix is what a listing names
        (a tag is the directory `tags/<tag>/`) that shows: tags/list would name a tag
        with no link. So the missing part of the path is built under a hidden name
        (`~`) in the deepest directory that exists, object included and fsynced, and
        renamed into place at once: a kill leaves nothing or the whole object (and at
        worst a hidden directory that no listing shows). `missing` is a directory on
        the way to `full` that the caller just found missing.
        """
        staged = self._stage_new_directory(full, data, missing, durable)
        if staged is None:
            return False
        staging, final, _ = staged
        try:
            os.rename(staging, final)
        except FileNotFoundError:
            shutil.rmtree(staging, ignore_errors=True)
            return False
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                return False  # made by another request meanwhile (or a file is there)
            raise
        if durable:
            self._sync_directory(os.path.dirname(final))
        return True

    def _stage_new_directory(
        self, full: str, data: bytes, missing: str, durable: bool
    ) -> tuple[str, str, str] | None:
        """The hidden staging directory of `_put_in_new_directory` with the object
        inside (fsynced if `durable`): (staging, the name to rename it to, the object's
        file in it); None where the usual path must write (see there)."""
        base = os.path.dirname(missing)
        while not os.path.isdir(base):
            parent = os.path.dirname(base)
            if parent == base or not parent.startswith(self._root):
                return None
            base = parent
        top, _, rest = os.path.relpath(full, base).partition(os.sep)
        if not rest or top in (".", ".."):
            return None
        staging = os.path.join(base, f".{secrets.token_hex(8)}.dir~")
        try:
            os.mkdir(staging)
            inner = staging
            for name in rest.split(os.sep)[:-1]:  # in a directory of our own: no checks
                inner = os.path.join(inner, name)
                os.mkdir(inner)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            fd = os.open(os.path.join(staging, rest), flags, 0o666)
            try:
                _write_all(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if durable:  # what is inside is durable before it can be seen
                while True:
                    _fsync_directory(inner)
                    if inner == staging:
                        break
                    inner = os.path.dirname(inner)
        except FileNotFoundError:
            # `base` was pruned, or a prefix delete above took our staging directory:
            # the usual path makes the directories again.
            shutil.rmtree(staging, ignore_errors=True)
            return None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return staging, os.path.join(base, top), os.path.join(staging, rest)

    def _stage(self, commit: _Commit) -> None:
        """Phase 1 of a group commit: the object's bytes in a temporary file (or in a
        staging directory, for new directories), not yet durable nor visible."""
        full = commit.full
        directory = os.path.dirname(full)
        missing = _missing_directory(full, commit.missing, commit.seen)
        if missing is not None:
            commit.staged = self._stage_new_directory(full, commit.data, missing, False)
            if commit.staged is not None:
                return
        fd, commit.temporary = self._create_temporary(directory)
        try:
            _write_all(fd, commit.data)
        except BaseException:
            os.close(fd)
            self._unstage(commit)
            raise
        os.close(fd)

    def _unstage(self, commit: _Commit) -> None:
        if commit.temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(commit.temporary)
            commit.temporary = None
        if commit.staged is not None:
            shutil.rmtree(commit.staged[0], ignore_errors=True)
            commit.staged = None

    def _publish(self, commit: _Commit) -> None:
        """Phase 2: the durable temporary (or staging directory) renamed into place; a
        lost race renames the staged, durable file into the directories that exist."""
        full, if_absent = commit.full, commit.if_absent
        place = os.link if if_absent else os.replace
        if commit.staged is not None:
            staging, final, inner = commit.staged
            try:
                os.rename(staging, final)
                commit.staged = None
                return
            except OSError as error:
                if error.errno not in (
                    errno.ENOTEMPTY,
                    errno.EEXIST,
                    errno.ENOTDIR,
                    errno.EISDIR,
                    errno.ENOENT,
                ):
                    raise
            try:
                if os.path.exists(inner):
                    self._with_parents(os.path.dirname(full), lambda: place(inner, full))
                    return
            finally:
                self._unstage(commit)
            self._put(full, commit.data, if_absent)  # taken by a prefix delete: alone
            return
        temporary = commit.temporary
        assert temporary is not None
        try:
            place(temporary, full)
        except FileNotFoundError:
            if os.path.exists(temporary):
                raise
            commit.temporary = None
            self._put(full, commit.data, if_absent)  # taken by a prefix delete: alone
        finally:
            self._unstage(commit)

    def _create_in_place(self, full: str) -> int:
        """A new, empty file at `full` (replacing any), open for appending."""
        directory = os.path.dirname(full)
        fd, temporary = self._create_temporary(directory, flags=os.O_APPEND)
        try:
            os.replace(temporary, full)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return fd

    def _create_temporary(self, directory: str, flags: int = 0) -> tuple[int, str]:
        """A new file in `directory`, named to be invisible; creates missing parents."""
        flags |= os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC

        def create() -> tuple[int, str]:
            temporary = os.path.join(directory, f".{secrets.token_hex(8)}.tmp~")
            return os.open(temporary, flags, 0o666), temporary

        return self._with_parents(directory, create)

    def _with_parents(self, directory: str, action: Callable[[], _T]) -> _T:
        """Run `action`, creating `directory` when missing (or pruned by a concurrent delete).

        Creating parents races with `_prune` of another request: a directory made a
        moment ago is empty, so a concurrent prune may remove it again before `action`
        runs, or remove its parent while `makedirs` is still descending. Either shows
        as FileNotFoundError, and both just mean "create it again".
        """
        for attempt in range(_RETRIES):
            try:
                return action()
            except FileNotFoundError:
                if attempt >= 2:
                    # Prunes keep winning (threads of this process in lockstep with ours):
                    # step aside a little longer each time, and they pass.
                    time.sleep(_RETRY_PAUSE * attempt)
                if os.path.isdir(directory):
                    continue  # made again meanwhile by another request
                try:
                    os.makedirs(directory, exist_ok=True)
                except FileExistsError:
                    # A file stands where a directory should be.
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", directory) from None
                except FileNotFoundError:
                    continue  # a parent was pruned while makedirs descended: again
        return action()

    def _delete(self, full: str) -> None:
        st = os.lstat(full)
        if stat.S_ISDIR(st.st_mode):
            # What is created under the prefix while it is being deleted stays, as if
            # created just after the delete (rmdir then finds its directory not empty).
            shutil.rmtree(full, onerror=_ignore_vanished)
        else:
            os.unlink(full)
        self._prune(os.path.dirname(full))

    def _delete_if(self, full: str, expected: bytes) -> bool:
        """Compare, then rename the file aside and check it is still the inode compared.

        A `put` replacing the name between the read and the rename is seen by the inode
        check: that newer file is linked back under its name (unless an even newer one
        is there by now, which then wins). Only in that race is the name absent for the
        moment between the rename and the link.
        """
        try:
            fd = _open_regular(full)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        try:
            compared = os.fstat(fd)
            if compared.st_size != len(expected) or _read_to_end(fd, len(expected)) != expected:
                return False
        finally:
            os.close(fd)
        directory = os.path.dirname(full)
        aside = os.path.join(directory, f".{secrets.token_hex(8)}.del~")
        try:
            os.rename(full, aside)
        except FileNotFoundError:
            return False  # deleted by someone else meanwhile
        moved = os.lstat(aside)
        if (moved.st_dev, moved.st_ino) == (compared.st_dev, compared.st_ino):
            os.unlink(aside)
            self._prune(directory)
            return True
        with contextlib.suppress(FileExistsError):
            os.link(aside, full)
        os.unlink(aside)
        return False

    def _move(self, source: str, destination: str) -> None:
        if not stat.S_ISREG(os.stat(source).st_mode):
            raise FileNotFoundError(errno.ENOENT, "not an object", source)
        directory = os.path.dirname(destination)
        existing = directory
        while self._durable and not os.path.isdir(existing) and existing != self._root:
            existing = os.path.dirname(existing)
        self._with_parents(directory, lambda: os.replace(source, destination))
        # The directories made for it (a new blob's `blobs/sha256/ab/<hex>/`) are entries
        # of their parents: each parent up to the one that already existed is fsynced too,
        # or power loss could leave the object's directory unnamed (POSIX promises nothing
        # for a directory entry until its directory is fsynced).
        synced = directory
        self._sync_directory(synced)
        while synced != existing:
            synced = os.path.dirname(synced)
            self._sync_directory(synced)
        if os.path.dirname(source) != directory:
            self._sync_directory(os.path.dirname(source))
            self._prune(os.path.dirname(source))

    def _sync_directory(self, directory: str) -> None:
        if self._durable:
            # Gone already: a concurrent delete removed what we wrote, and the directory.
            with contextlib.suppress(FileNotFoundError):
                self._directories.sync(directory)

    def _prune(self, directory: str) -> None:
        """Remove empty directories from `directory` up to (not including) the root."""
        while directory.startswith(self._inside):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)


class _FilesystemWriter(FileWriter):
    """Appends to the file at the path; buffers up to CHUNK_SIZE between thread hops.

    With fsync on, the writeback of every WRITEBACK_BYTES written is started at once
    (writeback.py), so that the fsync of `close` does not wait for the whole file."""

    def __init__(
        self, driver: FilesystemDriver, path: str, full: str, fd: int, size: int, created: bool
    ) -> None:
        self._driver = driver
        self._path = path
        self._full = full
        self._fd: int | None = fd
        self._size = size
        self._created = created
        self._buffer = bytearray()
        self._writeback_from = size
        """Where the bytes whose writeback has not been started begin."""

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        self._check_open()
        if not self._buffer and len(data) >= _DIRECT_WRITE:
            # Big enough on its own: straight to the file, no copy into the buffer.
            self._size += len(data)
            await self._write(data)
            return
        self._buffer += data
        self._size += len(data)
        if len(self._buffer) >= CHUNK_SIZE:
            await self._flush()

    async def close(self) -> None:
        if self._fd is None:
            return
        try:
            await self._flush()
            with _map_errors(self._path, writing=True):
                # With the other fsyncs (`put`): waiting on the disk must not hold the
                # default executor's few threads, which hash and write other uploads.
                await _in_thread(self._sync, pool=_writes())
        finally:
            self._release()

    async def commit(self) -> None:
        self._check_open()
        await self.close()

    async def cancel(self) -> None:
        fd = self._check_open()
        self._buffer.clear()
        try:
            with _map_errors(self._path, writing=True):
                await _in_thread(self._remove, fd)
        finally:
            self._release()

    async def truncate(self, size: int) -> None:
        fd = self._check_open()
        await self._flush()
        if not 0 <= size <= self._size:
            raise InvalidOffset(self._path, size)
        with _map_errors(self._path, writing=True):
            await _in_thread(self._truncate, fd, size)
        self._size = size

    def _truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)
        self._writeback_from = min(self._writeback_from, size)
        if self._driver._durable:
            os.fsync(fd)

    def _check_open(self) -> int:
        if self._fd is None:
            raise StorageError(f"writer for {self._path} is closed")
        return self._fd

    async def _flush(self) -> None:
        self._check_open()
        if not self._buffer:
            return
        data, self._buffer = self._buffer, bytearray()
        await self._write(data)

    async def _write(self, data: bytes | bytearray) -> None:
        """Write `data` (already counted in `_size`) in a thread."""
        fd = self._check_open()
        writeback = None
        if self._driver._durable and self._size - self._writeback_from >= WRITEBACK_BYTES:
            writeback, self._writeback_from = self._writeback_from, self._size
        try:
            with _map_errors(self._path, writing=True):
                await _in_thread(_write_all, fd, data, writeback)
        except BaseException:
            # What reached the file is unknown: a resumed writer reports the truth.
            self._release()
            raise

    def _sync(self) -> None:
        assert self._fd is not None
        if not self._driver._durable:
            return
        os.fsync(self._fd)
        if self._created:
            self._driver._directories.sync(os.path.dirname(self._full))
            self._created = False

    def _remove(self, fd: int) -> None:
        mine = os.fstat(fd)
        with contextlib.suppress(FileNotFoundError):
            there = os.lstat(self._full)
            # Only our own file: a newer writer of this path may own the name by now.
            if (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                os.unlink(self._full)
                self._driver._prune(os.path.dirname(self._full))

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def _in_thread(
    function: Callable[..., _T],
    *args: Any,
    cleanup: Callable[[_T], object] | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> _T:
    """`asyncio.to_thread` (in `pool`, else the default executor), except that a
    cancelled caller still waits for the thread.

    A thread cannot be stopped. Were the caller to close a descriptor the thread still
    uses, the number could be reused by another open file and a late write land there.
    `cleanup` releases what a cancelled call produced anyway (an opened descriptor).
    """
    task: asyncio.Future[_T]
    if pool is None:
        task = asyncio.ensure_future(asyncio.to_thread(function, *args))
    else:
        task = asyncio.get_running_loop().run_in_executor(pool, functools.partial(function, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        if not task.cancelled() and task.exception() is None and cleanup is not None:
            cleanup(task.result())
        raise


_O_PATH = getattr(os, "O_PATH", 0)


def _real_path(full: str) -> str:
    """`os.path.realpath(full)`, in three system calls instead of one per component."""
    return _real_path_and_missing(full)[0]


def _real_path_and_missing(full: str) -> tuple[str, int]:
    """`os.path.realpath(full)`, and how many of its last components do not exist (-1:
    not known).

    realpath lstats every component of the path in turn: ~160 µs for an object ten
    directories deep on this machine. Opening the path with O_PATH lets the kernel
    resolve it (symlinks followed, as realpath does) and /proc/self/fd names what it
    resolved to: ~25 µs. A path that does not exist is its parent's real path plus
    its name (found the same way), unless a dangling symlink stands there; where
    O_PATH or /proc is not available (not Linux), and in every case this does not
    handle, it is realpath itself.
    """
    if _O_PATH:
        try:
            fd = os.open(full, _O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            parent, name = os.path.split(full)
            if name in ("", ".", "..") or parent == full or os.path.lexists(full):
                return os.path.realpath(full), -1  # e.g. a dangling symlink: realpath follows it
            # Nothing there, so nothing to follow: the real path is the parent's + name.
            real, missing = _real_path_and_missing(parent)
            return os.path.join(real, name), missing + 1 if missing >= 0 else -1
        except OSError:
            return os.path.realpath(full), -1
        try:
            return os.readlink(f"/proc/self/fd/{fd}"), 0
        except OSError:
            pass
        finally:
            os.close(fd)
    return os.path.realpath(full), -1


def _open_regular(full: str) -> int:
    return _open_regular_sized(full)[0]


def _open_regular_sized(full: str) -> tuple[int, int]:
    """A descriptor of the regular file at `full`, and its size (one fstat for both)."""
    # O_NONBLOCK: a FIFO planted in the root must not hang the event loop in open().
    fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, "not an object", full)
    return fd, st.st_size


def _open_for_append(full: str) -> int:
    fd = os.open(full, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(errno.ENOENT, "not an object", full)
    return fd


def _read_to_end(fd: int, size: int) -> bytes:
    # pread, never the shared file position; to the end, since a writer may be appending.
    data = os.pread(fd, size, 0)
    while more := os.pread(fd, CHUNK_SIZE, len(data)):
        data += more
    return data


def _missing_directory(full: str, missing: str | None, seen: bool) -> str | None:
    """The first missing directory on the way to `full`, from what the root check saw
    (`_lookup`: the first missing component, or that the object was there), looking
    only when it saw neither; None when the object's directory exists."""
    if missing is None and not seen:  # not known: look
        directory = os.path.dirname(full)
        return None if os.path.isdir(directory) else directory
    return None if missing == full else missing  # the object missing, not its directory


def _write_all(fd: int, data: bytes | bytearray, writeback: int | None = None) -> None:
    """Write all of `data`; then, given an offset, start the writeback from there."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    if writeback is not None:
        start_writeback(fd, writeback)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _children(directory: str) -> list[str]:
    # listdir, not scandir: names are all we need, and it is 2-3x faster (tags/list).
    try:
        names = [name for name in os.listdir(directory) if name[-1] != "~"]
    except (FileNotFoundError, NotADirectoryError):
        return []
    names.sort()
    return names


def _scan(directory: str) -> list[tuple[str, bool, int, float]]:
    """Sorted (name, is_dir, size, mtime) of a directory's entries; symlinks skipped."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith("~"):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        found.append((entry.name, True, 0, 0.0))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append((entry.name, False, st.st_size, st.st_mtime))
                except FileNotFoundError:
                    continue  # deleted while we looked
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(found)


def _ignore_vanished(function: Any, path: str, excinfo: Any) -> None:
    """rmtree's onerror: another delete got there first, or a concurrent write created
    something inside a directory being removed (it stays); anything else is an error."""
    error = excinfo[1]
    if isinstance(error, FileNotFoundError):
        return
    if function is os.rmdir and isinstance(error, OSError) and error.errno == errno.ENOTEMPTY:
        return
    raise error
