"""What only the Azure Blob driver does: blocks staged on a per-writer name with the
block list in storage, discarding staged blocks, SAS URLs Azurite verifies, and failing
fast on a dead endpoint. Runs against Azurite (tests/conftest.py)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from arca.storage.driver import BackendUnavailable, PathNotFound
from arca.storage.drivers.azure import (
    BLOCKS_SUFFIX,
    MIN_BLOCK_SIZE,
    WRITER_SUFFIX,
    AzureBlobDriver,
)
from tests.conftest import azurite_connection_string

pytestmark = pytest.mark.anyio

MiB = 1 << 20
MakeDriver = Callable[..., AzureBlobDriver]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def make_driver(azurite_endpoint: str, azure_container: str) -> AsyncIterator[MakeDriver]:
    """Drivers on one fresh container (options overridable); all closed after the test."""
    made: list[AzureBlobDriver] = []

    def make(**options: Any) -> AzureBlobDriver:
        defaults: dict[str, Any] = {
            "container": azure_container,
            "connection_string": azurite_connection_string(azurite_endpoint),
            "block_size": MIN_BLOCK_SIZE,
        }
        made.append(AzureBlobDriver(**{**defaults, **options}))
        return made[-1]

    yield make
    for driver in made:
        await driver.close()


async def raw_blobs(driver: AzureBlobDriver) -> dict[str, int]:
    container = driver._service_client().get_container_client(driver.container)
    return {item.name: item.size async for item in container.list_blobs()}


async def staged_blocks(driver: AzureBlobDriver, name: str) -> list[int]:
    """Sizes of the uncommitted blocks on blob `name` ([] if the name has none)."""
    blob = driver._blob(name)
    try:
        _, uncommitted = await blob.get_block_list("uncommitted")
    except Exception:  # no such blob: nothing staged
        return []
    return [block.size for block in uncommitted]


async def test_chunks_become_blocks_listed_in_the_state_blob(make_driver: MakeDriver) -> None:
    writer = await make_driver().writer("u/data")
    await writer.close()
    for index in range(3):
        writer = await make_driver().writer("u/data", append=True)
        await writer.write(bytes([index]) * (MiB // 2))  # below block_size: staged at close
        await writer.close()
        blobs = await raw_blobs(make_driver())
        assert blobs["u/data" + WRITER_SUFFIX] < 1024  # the block list, never the bytes
        assert "u/data" not in blobs
    writer = await make_driver().writer("u/data", append=True)
    assert writer.size == 3 * (MiB // 2)
    await writer.commit()
    expected = b"".join(bytes([i]) * (MiB // 2) for i in range(3))
    assert await make_driver().get("u/data") == expected
    assert await raw_blobs(make_driver()) == {"u/data": len(expected)}  # staging and state gone


async def test_a_writer_holds_at_most_one_block_in_memory(make_driver: MakeDriver) -> None:
    writer = await make_driver().writer("big")
    data = os.urandom(5 * MiB + 17)
    for start in range(0, len(data), 64 * 1024):
        await writer.write(data[start : start + 64 * 1024])
        assert len(writer._buffer) < MIN_BLOCK_SIZE  # type: ignore[attr-defined]
    await writer.commit()
    assert await make_driver().get("big") == data


async def test_blocks_staged_after_the_last_close_are_left_out_on_resume(
    make_driver: MakeDriver,
) -> None:
    writer = await make_driver().writer("u/data")
    await writer.write(b"1" * (2 * MiB))
    await writer.close()
    crashed = await make_driver().writer("u/data", append=True)
    await crashed.write(b"X" * (2 * MiB))  # stages blocks 2 and 3, then "dies" unclosed
    resumed = await make_driver().writer("u/data", append=True)
    assert resumed.size == 2 * MiB
    await resumed.write(b"2" * MiB)
    await resumed.commit()
    assert await make_driver().get("u/data") == b"1" * (2 * MiB) + b"2" * MiB


async def test_two_writers_resuming_one_path_never_share_a_block(make_driver: MakeDriver) -> None:
    """Two replicas resuming one session at once each commit only their own bytes."""
    writer = await make_driver().writer("u/data")
    await writer.write(b"0" * MiB)
    await writer.close()
    one = await make_driver().writer("u/data", append=True)
    two = await make_driver().writer("u/data", append=True)
    await one.write(b"1" * MiB)
    await two.write(b"2" * MiB)  # the same position: on shared ids it would replace "1"s
    await one.commit()
    assert await make_driver().get("u/data") == b"0" * MiB + b"1" * MiB


async def test_cancel_and_delete_discard_staged_blocks(make_driver: MakeDriver) -> None:
    driver = make_driver()
    tokens = {}
    for path in ("a/data", "b/data"):
        writer = await driver.writer(path)
        await writer.write(b"x" * (2 * MiB))
        await writer.close()
        tokens[path] = writer._token  # type: ignore[attr-defined]
    staging = {path: f"{path}.{token}{BLOCKS_SUFFIX}" for path, token in tokens.items()}
    assert await staged_blocks(driver, staging["a/data"]) == [MiB, MiB]
    writer = await driver.writer("a/data", append=True)
    await writer.cancel()
    assert await staged_blocks(driver, staging["a/data"]) == []
    await driver.delete("b")
    assert await staged_blocks(driver, staging["b/data"]) == []
    assert await raw_blobs(driver) == {}
    with pytest.raises(PathNotFound):
        await driver.writer("b/data", append=True)


async def test_sas_url_serves_the_blob_and_azurite_checks_its_signature(
    make_driver: MakeDriver,
) -> None:
    driver = make_driver(redirect=True)
    await driver.put("blobs/x/data", b"direct")
    url = await driver.url_for("blobs/x/data", expires=60)
    assert url is not None
    assert httpx.get(url, timeout=10).content == b"direct"
    tampered = url.replace("sp=r", "sp=rw")  # a signature over other permissions
    assert httpx.get(tampered, timeout=10).status_code == 403
    assert await make_driver(redirect=False).url_for("blobs/x/data") is None


async def test_a_dead_endpoint_is_backend_unavailable_within_seconds() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    driver = AzureBlobDriver(
        "c",
        connection_string=azurite_connection_string(f"http://127.0.0.1:{port}"),
        max_attempts=2,
        connect_timeout=1,
        read_timeout=2,
    )
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable):
            await driver.get("x")
        with pytest.raises(BackendUnavailable):
            await driver.check()
    finally:
        await driver.close()
    assert time.monotonic() - started < 20


async def test_check_refuses_a_missing_container(make_driver: MakeDriver) -> None:
    with pytest.raises(BackendUnavailable, match=r"not usable|refused"):
        await make_driver(container="no-such-container").check()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"connection_string": None}, "connection_string"),  # neither it nor account_url
        ({"account_url": "http://127.0.0.1:1/acct"}, "connection_string"),  # both
        ({"block_size": 1000}, "block_size"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_unusable_options_are_refused_naming_the_option(options: dict[str, Any], key: str) -> None:
    base: dict[str, Any] = {"container": "c", "connection_string": "UseDevelopmentStorage=true"}
    with pytest.raises(ValueError, match=key):
        AzureBlobDriver(**{**base, **options})
