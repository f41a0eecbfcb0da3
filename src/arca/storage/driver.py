"""The storage driver contract: a dozen async methods on paths and bytes.

Modelled on distribution's StorageDriver. A driver knows nothing of digests,
manifests or repositories; `arca.storage.layout` builds every path it is given.

Paths are `/`-separated, relative, without empty, `.` or `..` components (see
`check_path`). A component ending in `~` is reserved for a driver's own
bookkeeping (temporary files, writer state), so no object can collide with it and
drivers can hide such names from `list` and `walk`. Every loaded driver sits behind
`arca.storage.checked.CheckedDriver`, which checks every path once, so a driver may
trust the paths it is given. Every driver must pass the shared suite in tests/storage/
(run through that wrapper).

A driver declares its `[storage.<name>]` options as a frozen dataclass
(`options_type`, see storage/options.py) and is listed by name in storage/drivers/.

Guarantees every driver gives:
- `put` is atomic: a reader sees the old object, the new one, or nothing; never a part.
- `put(..., if_absent=True)` creates only when nothing is at the path, atomically
  across processes and replicas, else raises `AlreadyExists`.
- `delete_if(path, expected)` removes an object only while it holds `expected`: a
  concurrent `put` of other bytes is never deleted (the registry's tags rely on it).
- `open_read` streams in large chunks (>= 1 MiB where the backend allows).
- `list` yields the names of direct children in lexical (code point) order.
- `FileWriter` survives its process: `writer(path, append=True)` from another driver
  instance on the same backend resumes with `size` equal to what was closed.

Only the exceptions below leave a driver; each driver maps its backend's errors to
them in one place.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Self

from arca.storage.options import DriverOptions

CHUNK_SIZE = 2 << 20
"""Read and write granularity: large enough that per-chunk overhead is noise.
2 MiB measured best for streaming a blob over uvicorn (1.5 GB/s at 1 MiB, 2.3 GB/s at
2 MiB, no better at 4 MiB; bench/registry_bench.py), and it bounds a download's
buffers to two chunks (one being sent, one read ahead)."""


class StorageError(Exception):
    """Base for everything a driver raises."""


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid path: {path!r}")
        self.path = path


class InvalidOffset(StorageError):
    def __init__(self, path: str, offset: int) -> None:
        super().__init__(f"invalid offset {offset} for {path}")
        self.path = path
        self.offset = offset


class AlreadyExists(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"already exists: {path}")
        self.path = path


class BackendUnavailable(StorageError):
    """The backend cannot be reached or refuses our credentials."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    path: str
    size: int
    modified: float
    """Seconds since the epoch of the last write."""


def check_path(path: str) -> str:
    """Refuse anything that could escape the storage root or alias another path."""
    if not path or path.startswith("/") or path.endswith("/") or "\\" in path or "\0" in path:
        raise InvalidPath(path)
    for part in path.split("/"):
        if part in ("", ".", "..") or part.endswith("~"):
            raise InvalidPath(path)
    return path


class FileWriter(abc.ABC):
    """An append-only object under construction (an upload session's data).

    Bytes written become durable at `close()` (resumable by a later
    `writer(path, append=True)`) and readable as a whole object at `commit()`.
    """

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes in the object so far, including this writer's writes."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Persist what was written so far; the writer cannot be used afterwards."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Finish the object: after this it is readable with `get`/`open_read`."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Discard the object and everything written to it."""

    async def truncate(self, size: int) -> None:
        """Cut the object back to its first `size` bytes, durably, before writing more.

        For a resumed object that holds bytes its owner never counted (a process killed
        between writing and recording them). InvalidOffset when the backend cannot cut
        there (past the end, or inside data it can no longer reach), and by default.
        """
        raise InvalidOffset("(writer)", size)


class Driver(abc.ABC):
    """The contract every storage backend implements."""

    name: str = "abstract"
    chunk_min_length: int = 0
    """Writes smaller than this cost the backend extra work (S3's part minimum); the
    registry advertises it as OCI-Chunk-Min-Length. Smaller chunks still work."""
    options_type: ClassVar[type[DriverOptions]] = DriverOptions
    """The frozen dataclass of this driver's `[storage.<name>]` options (storage/options.py)."""

    @classmethod
    def from_options(cls, options: DriverOptions) -> Self:
        """A driver from its parsed options; by default, each option is a constructor
        argument of the same name."""
        return cls(**options.as_arguments())

    @abc.abstractmethod
    async def get(self, path: str) -> bytes:
        """The whole object; for small objects (links, state, metadata)."""

    @abc.abstractmethod
    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        """Write the whole object atomically (see module docstring for `if_absent`)."""

    async def put_unsynced(self, path: str, data: bytes) -> None:
        """`put`, atomic and seen at once by every process, that need not be on stable
        storage when it returns: it survives the process being killed, but a power cut
        soon after may leave the previous object, nothing, or an object whose bytes are
        lost (empty or unreadable). Only for records whose loss after a power cut the
        caller handles (an upload session's state, docs/storage.md). The default is
        `put`, for backends where every write is durable anyway."""
        await self.put(path, data)

    @abc.abstractmethod
    def open_read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream `length` bytes (all to the end if None) from `offset`.

        Raises PathNotFound, or InvalidOffset when `offset` is past the end, on the
        first iteration at the latest.
        """

    @abc.abstractmethod
    async def stat(self, path: str) -> ObjectInfo:
        """Size and modification time of an object; PathNotFound for a prefix."""

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except PathNotFound:
            return False
        return True

    @abc.abstractmethod
    def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        """Names of the direct children of `prefix`, sorted, after `start_after`.

        A prefix with nothing under it yields nothing (no error): on object stores
        an empty "directory" does not exist.
        """

    async def list_page(
        self, prefix: str, start_after: str | None, limit: int
    ) -> builtins.list[str]:
        """Up to `limit` names that `list` would yield, in one call (tags/list): a
        listing of 1,000 names costs a few µs per name when each passes through the
        wrapper's and the driver's generators; a driver that has the names at hand
        returns a slice."""
        names: builtins.list[str] = []
        if limit <= 0:
            return names
        listing = self.list(prefix, start_after)
        try:
            async for name in listing:
                names.append(name)
                if len(names) == limit:
                    break
        finally:
            aclose = getattr(listing, "aclose", None)
            if aclose is not None:
                await aclose()
        return names

    @abc.abstractmethod
    def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object under `prefix`, recursively, in no promised order."""

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Delete an object or everything under a prefix; PathNotFound if nothing."""

    async def delete_if(self, path: str, expected: bytes) -> bool:
        """Delete the object at `path` only if its content is `expected`; whether it did.

        Atomic against concurrent writers where the backend can compare and delete in
        one step (the shipped drivers override this). This default reads and then
        deletes, so a `put` landing in between can be lost: a driver without a better
        way says so in its documentation.
        """
        try:
            if await self.get(path) != expected:
                return False
            await self.delete(path)
        except PathNotFound:
            return False
        return True

    @abc.abstractmethod
    async def move(self, source: str, destination: str) -> None:
        """Rename an object, replacing `destination`; atomic where the backend allows."""

    @abc.abstractmethod
    async def writer(self, path: str, append: bool = False) -> FileWriter:
        """A writer for `path`: a fresh object, or resume one (PathNotFound if none)."""

    def lock(self, prefix: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold an exclusive lock on an existing `prefix` across every process sharing
        this backend, where the backend can give one; PathNotFound if the prefix is gone.

        The lock goes with the prefix: deleting the prefix while holding it is allowed,
        and a waiter then finds the prefix gone. The default is no lock, for backends
        that have none (S3): there, what the lock protects is safe by other means
        (a finished multipart upload is an immutable object; docs/storage.md).
        """
        return contextlib.nullcontext()

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        """A URL clients can GET the object from directly, or None if unsupported."""
        return None

    async def local_file(self, path: str) -> BinaryIO | None:
        """The object's bytes as a file open for reading, for zero-copy sends (sendfile),
        or None when the backend has no local files. The caller closes it. The file
        stays the object's content even if the name is replaced meanwhile."""
        return None

    async def check(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Raise BackendUnavailable unless the backend answers (readiness probe)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and files."""
