"""The checking wrapper: every hook of the contract forwarded, paths checked, calls timed.

The contract is enumerated from `Driver` itself, so a hook added there later fails here
until every wrapper (this one and the tests' doubles) forwards it.
"""

from __future__ import annotations

import builtins
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO

import pytest
from prometheus_client import REGISTRY

from arca.storage.checked import CheckedDriver, checked
from arca.storage.driver import Driver, FileWriter, InvalidPath, StorageError
from arca.storage.drivers.memory import MemoryDriver
from tests.doubles import CountingDriver, FaultyDriver, WrappingDriver

pytestmark = pytest.mark.anyio

# How a driver is built, not what it does: a wrapper is built from a driver instead.
CONSTRUCTION = {"options_type", "from_options"}


def contract() -> set[str]:
    return {name for name in vars(Driver) if not name.startswith("_")} - CONSTRUCTION


class Hooked(MemoryDriver):
    """A driver whose every optional hook answers something no default would."""

    name = "hooked"
    chunk_min_length = 12_345

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def put_unsynced(self, path: str, data: bytes) -> None:
        self.seen.append("put_unsynced")  # the default (put) would not say so
        await self.put(path, data)

    async def exists(self, path: str) -> bool:
        self.seen.append("exists")
        return True  # even for nothing: the default (stat) would say False

    @contextlib.asynccontextmanager
    async def lock(self, prefix: str) -> AsyncIterator[None]:
        self.seen.append("lock")
        yield
        self.seen.append("unlock")

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        return f"http://127.0.0.1/{path}?expires={expires}"

    async def local_file(self, path: str) -> BinaryIO | None:
        self.seen.append("local_file")
        return io.BytesIO(b"local " + path.encode())

    async def list_page(
        self, prefix: str, start_after: str | None, limit: int
    ) -> builtins.list[str]:
        self.seen.append("list_page")
        return [f"{prefix} after {start_after}, {limit}"]

    async def check(self) -> None:
        self.seen.append("check")

    async def close(self) -> None:
        self.seen.append("close")


async def _lock(driver: Driver) -> Any:
    await driver.put("uploads/u/state", b"s")
    async with driver.lock("uploads/u"):
        return "held"


async def _exists(driver: Driver) -> Any:
    return await driver.exists("nothing/here")


async def _url_for(driver: Driver) -> Any:
    return await driver.url_for("blobs/x", 60)


async def _local_file(driver: Driver) -> Any:
    file = await driver.local_file("blobs/x")
    assert file is not None
    return file.read()


async def _check(driver: Driver) -> Any:
    await driver.check()


async def _close(driver: Driver) -> Any:
    await driver.close()


async def _put_get(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    return await driver.get("a/b")


async def _put_unsynced_get(driver: Driver) -> Any:
    await driver.put_unsynced("a/b", b"unsynced")
    return await driver.get("a/b")


async def _read(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    return b"".join([chunk async for chunk in driver.open_read("a/b", 1, 2)])


async def _stat(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    return (await driver.stat("a/b")).size


async def _list(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    return [name async for name in driver.list("a")]


async def _list_page(driver: Driver) -> Any:
    return await driver.list_page("a", "b", 2)


async def _walk(driver: Driver) -> Any:
    await driver.put("a/b/c", b"data")
    return [info.path async for info in driver.walk("a")]


async def _delete(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    await driver.delete("a")
    return await driver.exists("a/b")


async def _move(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    await driver.move("a/b", "c/d")
    return await driver.get("c/d")


async def _writer(driver: Driver) -> Any:
    writer = await driver.writer("w/data")
    await writer.write(b"12")
    await writer.close()
    resumed = await driver.writer("w/data", append=True)
    await resumed.write(b"3")
    await resumed.commit()
    return resumed.size, await driver.get("w/data")


async def _put_if_absent(driver: Driver) -> Any:
    await driver.put("a/b", b"1", if_absent=True)
    with contextlib.suppress(StorageError):
        await driver.put("a/b", b"2", if_absent=True)
    return await driver.get("a/b")


async def _delete_if(driver: Driver) -> Any:
    await driver.put("a/b", b"data")
    return await driver.delete_if("a/b", b"other"), await driver.delete_if("a/b", b"data")


# Each member of the contract, and what calling it through a wrapper must give.
HOOK_CALLS: dict[str, tuple[Callable[[Driver], Awaitable[Any]], Any, list[str]]] = {
    "lock": (_lock, "held", ["lock", "unlock"]),
    "exists": (_exists, True, ["exists"]),
    "url_for": (_url_for, "http://127.0.0.1/blobs/x?expires=60", []),
    "local_file": (_local_file, b"local blobs/x", ["local_file"]),
    "check": (_check, None, ["check"]),
    "close": (_close, None, ["close"]),
    "get": (_put_get, b"data", []),
    "put": (_put_if_absent, b"1", []),
    "put_unsynced": (_put_unsynced_get, b"unsynced", ["put_unsynced"]),
    "open_read": (_read, b"at", []),
    "stat": (_stat, 4, []),
    "list": (_list, ["b"], []),
    "list_page": (_list_page, ["a after b, 2"], ["list_page"]),
    "walk": (_walk, ["a/b/c"], []),
    "delete": (_delete, True, ["exists"]),  # Hooked.exists answers True for anything
    "delete_if": (_delete_if, (False, True), []),
    "move": (_move, b"data", []),
    "writer": (_writer, (3, b"123"), []),
}
ATTRIBUTES = {"name": "hooked", "chunk_min_length": 12_345}

WRAPPERS = [
    pytest.param(CheckedDriver, id="CheckedDriver"),
    pytest.param(WrappingDriver, id="WrappingDriver"),
    pytest.param(CountingDriver, id="CountingDriver"),
    pytest.param(FaultyDriver, id="FaultyDriver"),
]


def test_every_member_of_the_contract_is_covered_here() -> None:
    assert contract() == set(HOOK_CALLS) | set(ATTRIBUTES), (
        "Driver changed: add the new member to HOOK_CALLS or ATTRIBUTES, and forward it"
        " in storage/checked.py and tests/doubles.py"
    )


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wrapper_defines_every_method_of_the_contract(wrapper: type[Driver]) -> None:
    defined = {name for klass in wrapper.__mro__ if klass is not Driver for name in vars(klass)}
    missing = set(HOOK_CALLS) - defined
    assert not missing, f"{wrapper.__name__} inherits Driver's default for {sorted(missing)}"


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("member", sorted(HOOK_CALLS))
async def test_wrapper_forwards_each_hook_to_the_driver(
    wrapper: Callable[[Driver], Driver], member: str
) -> None:
    inner = Hooked()
    call, expected, seen = HOOK_CALLS[member]
    assert await call(wrapper(inner)) == expected
    assert inner.seen == seen


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wrapper_forwards_the_driver_attributes(wrapper: Callable[[Driver], Driver]) -> None:
    wrapped = wrapper(Hooked())
    assert {name: getattr(wrapped, name) for name in ATTRIBUTES} == ATTRIBUTES


def test_file_writer_wrappers_forward_every_member() -> None:
    from tests.doubles import _FaultyWriter

    members = {name for name in vars(FileWriter) if not name.startswith("_")}
    for wrapper in (_checked_writer_class(), _FaultyWriter):
        assert members <= set(vars(wrapper)), wrapper


def _checked_writer_class() -> type[FileWriter]:
    from arca.storage.checked import _CheckedWriter

    return _CheckedWriter


def test_checked_is_applied_once() -> None:
    driver = checked(MemoryDriver())
    assert checked(driver) is driver


async def test_invalid_paths_never_reach_the_driver() -> None:
    inner = CountingDriver(MemoryDriver())
    driver = checked(inner)
    for path in ("../escape", "/absolute", "a//b", "a/./b", "reserved~/x", ""):
        with pytest.raises(InvalidPath):
            await driver.get(path)
        with pytest.raises(InvalidPath):
            await driver.move("ok", path)
        with pytest.raises(InvalidPath):
            async with driver.lock(path):
                pass
    assert inner.calls == []


def _sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_every_call_is_timed_by_driver_and_operation() -> None:
    driver = checked(MemoryDriver())
    count = "arca_storage_operation_duration_seconds_count"
    before = {op: _sample(count, driver="memory", operation=op) for op in ("put", "get", "list")}
    await driver.put("a/b", b"x")
    await driver.get("a/b")
    await driver.get("a/b")
    assert [name async for name in driver.list("a")] == ["b"]
    after = {op: _sample(count, driver="memory", operation=op) for op in before}
    assert {op: after[op] - before[op] for op in before} == {"put": 1, "get": 2, "list": 1}


async def test_failures_are_counted_but_missing_objects_are_answers() -> None:
    faulty = FaultyDriver(MemoryDriver())
    driver = checked(faulty)
    errors = "arca_storage_errors_total"
    labels = {"driver": "memory", "error": "StorageError"}
    before = _sample(errors, operation="writer.write", **labels)
    missing_before = _sample(errors, operation="get", driver="memory", error="PathNotFound")
    writer = await driver.writer("w/data")
    faulty.fail_write = True
    with pytest.raises(StorageError):
        await writer.write(b"x")
    with pytest.raises(StorageError):
        await driver.get("no/such")
    assert _sample(errors, operation="writer.write", **labels) == before + 1
    assert _sample(errors, operation="get", driver="memory", error="PathNotFound") == (
        missing_before
    )


async def test_an_abandoned_read_closes_the_drivers_reader() -> None:
    closed: list[str] = []

    class Tracking(MemoryDriver):
        async def open_read(
            self, path: str, offset: int = 0, length: int | None = None
        ) -> AsyncIterator[bytes]:
            try:
                yield b"first"
                yield b"second"
            finally:
                closed.append(path)

    driver = checked(Tracking())
    reader = driver.open_read("a/b")
    assert await anext(reader) == b"first"
    await reader.aclose()  # type: ignore[attr-defined]
    assert closed == ["a/b"]
