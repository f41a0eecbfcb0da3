"""The one wrapper every loaded driver goes through (distribution's `base.go`).

`CheckedDriver` does, once and for every driver, what each driver would otherwise
repeat or forget:

- validates every path (`check_path`) before the driver sees it, so a driver may trust
  its paths (the filesystem driver still refuses a real path outside its root: symlinks
  are its own concern);
- times every call into `arca_storage_operation_duration_seconds` and counts failures
  in `arca_storage_errors_total`, by driver and operation (streamed reads and listings
  are timed until their first item: that is the backend's latency, the rest is the
  consumer's pace);
- forwards every optional hook of the contract (`lock`, `chunk_min_length`, `url_for`,
  `exists`, `check`, `close`, ...), so a driver's own implementation is never
  silently replaced by the base class's default. tests/storage/test_checked.py
  enumerates the contract to keep it so, for this wrapper and the tests' doubles.

`checked(driver)` is idempotent: wiring may call it on whatever it is given.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, BinaryIO, TypeVar

from arca import metrics
from arca.storage.driver import (
    AlreadyExists,
    Driver,
    FileWriter,
    ObjectInfo,
    PathNotFound,
    check_path,
)

# Outcomes the contract defines as answers: an absent object, a lost create-only race.
_ANSWERS = (PathNotFound, AlreadyExists)


class CheckedDriver(Driver):
    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = inner.name
        self.chunk_min_length = inner.chunk_min_length
        self._histograms: dict[str, Any] = {}  # operation -> its labelled histogram

    def _timed(self, operation: str) -> _Timed:
        histogram = self._histograms.get(operation)
        if histogram is None:
            histogram = metrics.STORAGE_DURATION.labels(self.name, operation)
            self._histograms[operation] = histogram
        return _Timed(self.name, operation, histogram)

    def _counted(self, operation: str) -> _Timed:
        return _Timed(self.name, operation, None)

    async def get(self, path: str) -> bytes:
        check_path(path)
        with self._timed("get"):
            return await self.inner.get(path)

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        check_path(path)
        with self._timed("put"):
            await self.inner.put(path, data, if_absent=if_absent)

    async def put_unsynced(self, path: str, data: bytes) -> None:
        check_path(path)
        with self._timed("put"):
            await self.inner.put_unsynced(path, data)

    async def open_read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        check_path(path)
        async with _closing(self.inner.open_read(path, offset, length)) as chunks:
            with self._timed("open_read"):
                first = await anext(chunks, None)
            if first is None:
                return
            yield first
            with self._counted("open_read"):
                async for chunk in chunks:
                    yield chunk

    async def stat(self, path: str) -> ObjectInfo:
        check_path(path)
        with self._timed("stat"):
            return await self.inner.stat(path)

    async def exists(self, path: str) -> bool:
        check_path(path)
        with self._timed("exists"):
            return await self.inner.exists(path)

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        check_path(prefix)
        async with _closing(self.inner.list(prefix, start_after)) as names:
            with self._timed("list"):
                first = await anext(names, None)
            if first is None:
                return
            yield first
            with self._counted("list"):
                async for name in names:
                    yield name

    async def list_page(
        self, prefix: str, start_after: str | None, limit: int
    ) -> builtins.list[str]:
        check_path(prefix)
        with self._timed("list"):
            return await self.inner.list_page(prefix, start_after, limit)

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        check_path(prefix)
        async with _closing(self.inner.walk(prefix)) as infos:
            with self._timed("walk"):
                first = await anext(infos, None)
            if first is None:
                return
            yield first
            with self._counted("walk"):
                async for info in infos:
                    yield info

    async def delete(self, path: str) -> None:
        check_path(path)
        with self._timed("delete"):
            await self.inner.delete(path)

    async def delete_if(self, path: str, expected: bytes) -> bool:
        check_path(path)
        with self._timed("delete_if"):
            return await self.inner.delete_if(path, expected)

    async def move(self, source: str, destination: str) -> None:
        check_path(source)
        check_path(destination)
        with self._timed("move"):
            await self.inner.move(source, destination)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        check_path(path)
        with self._timed("writer"):
            return _CheckedWriter(self, await self.inner.writer(path, append))

    @contextlib.asynccontextmanager
    async def lock(self, prefix: str) -> AsyncIterator[None]:
        check_path(prefix)
        async with contextlib.AsyncExitStack() as stack:
            with self._timed("lock"):  # the time to acquire it, waiting included
                await stack.enter_async_context(self.inner.lock(prefix))
            yield

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        check_path(path)
        with self._timed("url_for"):
            return await self.inner.url_for(path, expires)

    async def local_file(self, path: str) -> BinaryIO | None:
        check_path(path)
        with self._timed("local_file"):
            return await self.inner.local_file(path)

    async def check(self) -> None:
        with self._timed("check"):
            await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


class _Timed:
    """Times a call into its histogram (if any) and counts its failure; a plain class,
    not a generator context manager: it runs around every storage call."""

    __slots__ = ("_driver", "_histogram", "_operation", "_start")

    def __init__(self, driver: str, operation: str, histogram: Any) -> None:
        self._driver = driver
        self._operation = operation
        self._histogram = histogram
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if self._histogram is not None:
            self._histogram.observe(time.perf_counter() - self._start)
        # CancelledError and GeneratorExit are BaseExceptions: the caller left, not a fault.
        if isinstance(error, Exception) and not isinstance(error, _ANSWERS):
            labels = (self._driver, self._operation, type(error).__name__)
            metrics.STORAGE_ERRORS.labels(*labels).inc()


class _CheckedWriter(FileWriter):
    """A writer whose calls are timed like the driver's (`writer.write`, ...)."""

    def __init__(self, driver: CheckedDriver, inner: FileWriter) -> None:
        self._driver = driver
        self.inner = inner

    @property
    def size(self) -> int:
        return self.inner.size

    async def write(self, data: bytes) -> None:
        with self._driver._timed("writer.write"):
            await self.inner.write(data)

    async def close(self) -> None:
        with self._driver._timed("writer.close"):
            await self.inner.close()

    async def commit(self) -> None:
        with self._driver._timed("writer.commit"):
            await self.inner.commit()

    async def cancel(self) -> None:
        with self._driver._timed("writer.cancel"):
            await self.inner.cancel()

    async def truncate(self, size: int) -> None:
        with self._driver._timed("writer.truncate"):
            await self.inner.truncate(size)


_T = TypeVar("_T")


@contextlib.asynccontextmanager
async def _closing(iterator: AsyncIterator[_T]) -> AsyncIterator[AsyncIterator[_T]]:
    """Close the driver's generator with ours, so its files and connections go at once."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def checked(driver: Driver) -> CheckedDriver:
    """`driver` behind the checking wrapper (once: a wrapped driver is returned as is)."""
    return driver if isinstance(driver, CheckedDriver) else CheckedDriver(driver)
