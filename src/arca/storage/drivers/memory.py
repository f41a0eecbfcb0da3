"""An in-memory driver: the test double for every service test, never for production.

Paths are checked by the wrapper every loaded driver goes through (storage/checked.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from arca.storage.driver import (
    CHUNK_SIZE,
    AlreadyExists,
    Driver,
    FileWriter,
    InvalidOffset,
    ObjectInfo,
    PathNotFound,
)


class _Object:
    __slots__ = ("data", "modified")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.modified = time.time()


class MemoryDriver(Driver):
    name = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, _Object] = {}
        # Writers' bytes live apart from objects: an object appears only at commit.
        self._pending: dict[str, bytearray] = {}

    async def get(self, path: str) -> bytes:
        return self._lookup(path).data

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        if if_absent and path in self._objects:
            raise AlreadyExists(path)
        self._objects[path] = _Object(bytes(data))

    async def open_read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        data = self._lookup(path).data
        if offset < 0 or offset > len(data):
            raise InvalidOffset(path, offset)
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, CHUNK_SIZE):
            yield data[start : min(end, start + CHUNK_SIZE)]

    async def stat(self, path: str) -> ObjectInfo:
        obj = self._lookup(path)
        return ObjectInfo(path, len(obj.data), obj.modified)

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        base = prefix + "/"
        names = {p[len(base) :].split("/", 1)[0] for p in self._objects if p.startswith(base)}
        for name in sorted(names):
            if start_after is None or name > start_after:
                yield name

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = prefix + "/"
        for path in sorted(p for p in self._objects if p.startswith(base)):
            obj = self._objects.get(path)
            if obj is not None:
                yield ObjectInfo(path, len(obj.data), obj.modified)

    async def delete(self, path: str) -> None:
        doomed = [p for p in self._objects if p == path or p.startswith(path + "/")]
        doomed_pending = [p for p in self._pending if p == path or p.startswith(path + "/")]
        if not doomed and not doomed_pending:
            raise PathNotFound(path)
        for p in doomed:
            del self._objects[p]
        for p in doomed_pending:
            del self._pending[p]

    async def delete_if(self, path: str, expected: bytes) -> bool:
        obj = self._objects.get(path)
        if obj is None or obj.data != expected:
            return False
        del self._objects[path]
        return True

    async def move(self, source: str, destination: str) -> None:
        obj = self._lookup(source)
        self._objects[destination] = obj
        del self._objects[source]

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        if append:
            if path not in self._pending:
                raise PathNotFound(path)
        else:
            self._pending[path] = bytearray()
        return _MemoryWriter(self, path)

    def _lookup(self, path: str) -> _Object:
        try:
            return self._objects[path]
        except KeyError:
            raise PathNotFound(path) from None


class _MemoryWriter(FileWriter):
    def __init__(self, driver: MemoryDriver, path: str) -> None:
        self._driver = driver
        self._path = path
        self._buffer = driver._pending[path]

    @property
    def size(self) -> int:
        return len(self._buffer)

    async def write(self, data: bytes) -> None:
        self._buffer += data

    async def close(self) -> None:
        pass

    async def commit(self) -> None:
        self._driver._objects[self._path] = _Object(bytes(self._buffer))
        self._driver._pending.pop(self._path, None)

    async def cancel(self) -> None:
        self._driver._pending.pop(self._path, None)

    async def truncate(self, size: int) -> None:
        if not 0 <= size <= len(self._buffer):
            raise InvalidOffset(self._path, size)
        del self._buffer[size:]
