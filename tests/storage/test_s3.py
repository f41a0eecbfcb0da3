"""What only the S3 driver does: multipart writers with persisted tails, multipart copies,
presigned URLs, prefixes, listing order, and failing fast on a dead endpoint."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from arca.storage.driver import (
    AlreadyExists,
    BackendUnavailable,
    InvalidOffset,
    PathNotFound,
    StorageError,
)
from arca.storage.drivers._listing import in_name_order
from arca.storage.drivers.s3 import (
    MIN_PART_SIZE,
    WRITER_SUFFIX,
    S3Driver,
    _map_errors,
)
from tests.conftest import S3_CREDENTIALS, S3_REGION, create_bucket

pytestmark = pytest.mark.anyio

MiB = 1 << 20
MakeDriver = Callable[..., S3Driver]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def make_driver(s3_endpoint: str, s3_bucket: str) -> AsyncIterator[MakeDriver]:
    """Drivers on one fresh bucket (options overridable); all closed after the test."""
    made: list[S3Driver] = []

    def make(**options: Any) -> S3Driver:
        defaults: dict[str, Any] = {
            "bucket": s3_bucket,
            "endpoint_url": s3_endpoint,
            "region": S3_REGION,
            "part_size": MIN_PART_SIZE,
            **S3_CREDENTIALS,
        }
        made.append(S3Driver(**{**defaults, **options}))
        return made[-1]

    yield make
    for driver in made:
        await driver.close()


async def raw_keys(driver: S3Driver) -> dict[str, int]:
    s3 = await driver._client()
    response = await s3.list_objects_v2(Bucket=driver.bucket)
    return {item["Key"]: item["Size"] for item in response.get("Contents", [])}


async def open_uploads(driver: S3Driver) -> list[str]:
    s3 = await driver._client()
    response = await s3.list_multipart_uploads(Bucket=driver.bucket)
    return [upload["Key"] for upload in response.get("Uploads", [])]


# -- writers -----------------------------------------------------------------------------


async def test_small_chunks_are_kept_in_the_state_object_not_in_ram(
    make_driver: MakeDriver,
) -> None:
    writer = await make_driver().writer("u/data")
    await writer.close()
    for index in range(3):
        writer = await make_driver().writer("u/data", append=True)
        await writer.write(bytes([index]) * MiB)
        await writer.close()
        keys = await raw_keys(make_driver())
        assert keys["u/data" + WRITER_SUFFIX] > (index + 1) * MiB  # the tail, persisted
        assert "u/data" not in keys
    assert await open_uploads(make_driver()) == []  # no part reached 5 MiB yet
    writer = await make_driver().writer("u/data", append=True)
    await writer.commit()
    assert await make_driver().get("u/data") == b"\0" * MiB + b"\1" * MiB + b"\2" * MiB
    assert await raw_keys(make_driver()) == {"u/data": 3 * MiB}


async def test_a_writer_holds_at_most_one_part_in_memory(make_driver: MakeDriver) -> None:
    writer = await make_driver().writer("big")
    data = os.urandom(12 * MiB)
    for start in range(0, len(data), 64 * 1024):
        await writer.write(data[start : start + 64 * 1024])
        assert len(writer._buffer) < MIN_PART_SIZE  # type: ignore[attr-defined]
    await writer.commit()
    assert await make_driver().get("big") == data


async def test_close_sends_a_buffer_of_a_whole_part_instead_of_storing_it(
    make_driver: MakeDriver,
) -> None:
    driver = make_driver(part_size=8 * MiB)
    writer = await driver.writer("u/data")
    await writer.write(b"a" * (6 * MiB))
    await writer.close()
    keys = await raw_keys(driver)
    assert keys["u/data" + WRITER_SUFFIX] < 1024  # parts list only
    assert await open_uploads(driver) == ["u/data"]
    writer = await make_driver(part_size=8 * MiB).writer("u/data", append=True)
    await writer.write(b"b")
    await writer.commit()
    assert await driver.get("u/data") == b"a" * (6 * MiB) + b"b"
    assert await open_uploads(driver) == []


async def test_parts_sent_after_the_last_close_are_replaced_on_resume(
    make_driver: MakeDriver,
) -> None:
    writer = await make_driver().writer("u/data")
    await writer.write(b"1" * (7 * MiB))  # one part sent, 2 MiB buffered
    await writer.close()
    crashed = await make_driver().writer("u/data", append=True)
    await crashed.write(b"X" * (4 * MiB))  # sends part 2, then "dies" without close()
    resumed = await make_driver().writer("u/data", append=True)
    assert resumed.size == 7 * MiB
    await resumed.write(b"2" * (4 * MiB))
    await resumed.commit()
    assert await make_driver().get("u/data") == b"1" * (7 * MiB) + b"2" * (4 * MiB)


async def test_cancel_and_delete_abort_multipart_uploads(make_driver: MakeDriver) -> None:
    driver = make_driver()
    for path in ("a/data", "b/data"):
        writer = await driver.writer(path)
        await writer.write(b"x" * (6 * MiB))
        await writer.close()
    assert sorted(await open_uploads(driver)) == ["a/data", "b/data"]
    writer = await driver.writer("a/data", append=True)
    await writer.cancel()
    await driver.delete("b")
    assert await open_uploads(driver) == []
    assert await raw_keys(driver) == {}


async def test_a_write_whose_part_fails_is_not_counted(
    make_driver: MakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await make_driver().writer("u/data")
    await writer.write(b"1" * (4 * MiB))

    async def unreachable(data: bytes, number: int) -> None:
        raise BackendUnavailable("S3 endpoint unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(writer, "_send_part", unreachable)
        with pytest.raises(BackendUnavailable):
            await writer.write(b"X" * (2 * MiB))
    assert writer.size == 4 * MiB
    await writer.write(b"2" * (2 * MiB))
    await writer.commit()
    assert await make_driver().get("u/data") == b"1" * (4 * MiB) + b"2" * (2 * MiB)


ERRORS = [
    ({"Code": "NoSuchKey"}, 404, PathNotFound),
    ({"Code": "NoSuchUpload"}, 404, PathNotFound),  # an upload aborted under a writer
    ({"Code": "PreconditionFailed"}, 412, AlreadyExists),
    ({"Code": "InvalidRange"}, 416, InvalidOffset),
    ({"Code": "AccessDenied"}, 403, BackendUnavailable),
    ({"Code": "NoSuchBucket"}, 404, BackendUnavailable),
    ({"Code": "SlowDown"}, 503, BackendUnavailable),
    ({"Code": "InternalError"}, 500, BackendUnavailable),
    ({"Code": "EntityTooLarge"}, 400, StorageError),
]


@pytest.mark.parametrize(("error", "status", "expected"), ERRORS)
def test_s3_errors_map_to_the_contract(
    error: dict[str, str], status: int, expected: type[StorageError]
) -> None:
    # moto answers 500 where S3 says NoSuchUpload, so the mapping is checked directly.
    response: Any = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    with pytest.raises(expected) as raised, _map_errors("some/path"):
        raise ClientError(response, "Operation")
    assert type(raised.value) is expected


def test_connection_failures_are_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable), _map_errors("some/path"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


# -- the rest of the contract ------------------------------------------------------------


async def test_move_of_a_large_object_copies_part_by_part(make_driver: MakeDriver) -> None:
    driver = make_driver()
    driver.copy_threshold, driver.copy_part_size = 6 * MiB, MIN_PART_SIZE
    data = os.urandom(12 * MiB + 1)
    await driver.put("uploads/u/data", data)
    await driver.move("uploads/u/data", "blobs/x/data")
    assert await driver.get("blobs/x/data") == data
    assert not await driver.exists("uploads/u/data")
    assert await open_uploads(driver) == []


async def test_prefixes_keep_drivers_apart(make_driver: MakeDriver) -> None:
    one, two = make_driver(prefix="one"), make_driver(prefix="/two/deeper/")
    await one.put("x/y", b"1")
    await two.put("x/y", b"2")
    assert await one.get("x/y") == b"1"
    assert await two.get("x/y") == b"2"
    assert await raw_keys(make_driver()) == {"one/x/y": 1, "two/deeper/x/y": 1}
    await one.delete("x")
    assert await two.get("x/y") == b"2"


async def test_walk_and_list_skip_keys_that_are_not_object_paths(make_driver: MakeDriver) -> None:
    driver = make_driver()
    s3 = await driver._client()
    for key in ("d/ok", "d//double", "d/x~", "d/sub/"):
        await s3.put_object(Bucket=driver.bucket, Key=key, Body=b"")
    assert [info.path async for info in driver.walk("d")] == ["d/ok"]
    assert [name async for name in driver.list("d")] == ["ok", "sub"]


async def test_presigned_urls_use_the_public_endpoint(
    make_driver: MakeDriver, s3_endpoint: str
) -> None:
    public = s3_endpoint.replace("127.0.0.1", "localhost")
    driver = make_driver(redirect=True, public_endpoint_url=public)
    await driver.put("blobs/x/data", b"direct")
    url = await driver.url_for("blobs/x/data", expires=60)
    assert url is not None
    assert url.startswith(public + "/")
    response = httpx.get(url, timeout=10)
    assert (response.status_code, response.content) == (200, b"direct")
    assert await make_driver(redirect=False).url_for("blobs/x/data") is None


async def test_an_unreachable_endpoint_fails_fast(make_driver: MakeDriver) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there
    driver = make_driver(endpoint_url=dead, max_attempts=2, connect_timeout=1, read_timeout=1)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await driver.check()
    with pytest.raises(BackendUnavailable):
        await driver.get("anything")
    assert time.monotonic() - started < 10


async def test_a_missing_bucket_is_unavailable(make_driver: MakeDriver) -> None:
    driver = make_driver(bucket="arca-no-such-bucket")
    with pytest.raises(BackendUnavailable):
        await driver.check()
    with pytest.raises(BackendUnavailable):
        await driver.put("x", b"x")


async def test_two_drivers_on_one_bucket_see_each_others_writes(
    s3_endpoint: str, make_driver: MakeDriver
) -> None:
    bucket = create_bucket(s3_endpoint)
    one, two = make_driver(bucket=bucket), make_driver(bucket=bucket)
    await asyncio.gather(one.put("p/1", b"1"), two.put("p/2", b"2"))
    assert [name async for name in one.list("p")] == ["1", "2"]


@pytest.mark.parametrize(
    "options",
    [{"part_size": MIN_PART_SIZE - 1}, {"addressing_style": "sideways"}, {"bucket": ""},
     {"access_key_id": "only-one", "secret_access_key": None}],
)  # fmt: skip
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    defaults: dict[str, Any] = {"bucket": "b", **S3_CREDENTIALS}
    with pytest.raises(ValueError):
        S3Driver(**{**defaults, **options})


# -- listing order, as a property ----------------------------------------------------------


@given(st.sets(st.text(alphabet="a-./_0", min_size=1, max_size=6), max_size=30))
def test_children_come_out_in_code_point_order(paths: set[str]) -> None:
    """Feed S3's key order (a prefix sorts as `name/`, as on GCS and Azure: the three
    drivers share this helper) and expect sorted unique names."""
    keys = {"/".join(p for p in path.split("/") if p) for path in paths} - {""}
    children = {key.split("/", 1)[0] + ("/" if "/" in key else "") for key in keys}
    s3_order = sorted(children)

    async def feed() -> AsyncIterator[str]:
        for child in s3_order:
            yield child.rstrip("/")

    async def collect() -> list[str]:
        return [name async for name in in_name_order(feed())]

    assert asyncio.run(collect()) == sorted({child.rstrip("/") for child in children})
