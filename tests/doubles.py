"""Test doubles around a real driver: count calls or fail chosen ones (nothing mocks the store).

`WrappingDriver` forwards every hook of the contract; tests/storage/test_checked.py
enumerates the contract to keep it so.
"""

from __future__ import annotations

import builtins
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

from arca.storage.driver import Driver, FileWriter, ObjectInfo, StorageError


class WrappingDriver(Driver):
    """Delegates everything; subclasses hook `_seen(method, path)`."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = inner.name
        self.chunk_min_length = inner.chunk_min_length

    def _seen(self, method: str, path: str) -> None:
        pass

    async def get(self, path: str) -> bytes:
        self._seen("get", path)
        return await self.inner.get(path)

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        self._seen("put", path)
        await self.inner.put(path, data, if_absent=if_absent)

    async def put_unsynced(self, path: str, data: bytes) -> None:
        # A put as far as the doubles count and fail calls; only durability differs.
        self._seen("put", path)
        await self.inner.put_unsynced(path, data)

    async def open_read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        self._seen("open_read", path)
        async for chunk in self.inner.open_read(path, offset, length):
            yield chunk

    async def stat(self, path: str) -> ObjectInfo:
        self._seen("stat", path)
        return await self.inner.stat(path)

    async def exists(self, path: str) -> bool:
        self._seen("exists", path)
        return await self.inner.exists(path)

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        self._seen("list", prefix)
        async for name in self.inner.list(prefix, start_after):
            yield name

    async def list_page(
        self, prefix: str, start_after: str | None, limit: int
    ) -> builtins.list[str]:
        self._seen("list", prefix)
        return await self.inner.list_page(prefix, start_after, limit)

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        self._seen("walk", prefix)
        async for info in self.inner.walk(prefix):
            yield info

    async def delete(self, path: str) -> None:
        self._seen("delete", path)
        await self.inner.delete(path)

    async def delete_if(self, path: str, expected: bytes) -> bool:
        self._seen("delete_if", path)
        return await self.inner.delete_if(path, expected)

    async def move(self, source: str, destination: str) -> None:
        self._seen("move", source)
        await self.inner.move(source, destination)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        self._seen("writer", path)
        return await self.inner.writer(path, append)

    def lock(self, prefix: str) -> contextlib.AbstractAsyncContextManager[None]:
        self._seen("lock", prefix)
        return self.inner.lock(prefix)

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        return await self.inner.url_for(path, expires)

    async def local_file(self, path: str) -> BinaryIO | None:
        self._seen("local_file", path)
        return await self.inner.local_file(path)

    async def check(self) -> None:
        await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


class CountingDriver(WrappingDriver):
    """Records every call as (method, path) so tests can bound storage traffic."""

    def __init__(self, inner: Driver) -> None:
        super().__init__(inner)
        self.calls: list[tuple[str, str]] = []

    def _seen(self, method: str, path: str) -> None:
        self.calls.append((method, path))

    def counts(self) -> Counter[str]:
        return Counter(method for method, _ in self.calls)

    def reads_of(self, predicate: Callable[[str], bool]) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.calls if m in ("get", "open_read") and predicate(p)]


class FaultyDriver(WrappingDriver):
    """Writers whose next `write` or `close` fails once when armed, as a backend can."""

    def __init__(self, inner: Driver) -> None:
        super().__init__(inner)
        self.fail_write = False
        self.fail_close = False

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        return _FaultyWriter(self, await self.inner.writer(path, append))


class _FaultyWriter(FileWriter):
    def __init__(self, driver: FaultyDriver, inner: FileWriter) -> None:
        self._driver = driver
        self._inner = inner

    @property
    def size(self) -> int:
        return self._inner.size

    async def write(self, data: bytes) -> None:
        if self._driver.fail_write:
            self._driver.fail_write = False
            raise StorageError("injected write failure")
        await self._inner.write(data)

    async def close(self) -> None:
        if self._driver.fail_close:
            self._driver.fail_close = False
            raise StorageError("injected close failure")
        await self._inner.close()

    async def commit(self) -> None:
        await self._inner.commit()

    async def cancel(self) -> None:
        await self._inner.cancel()

    async def truncate(self, size: int) -> None:
        await self._inner.truncate(size)
