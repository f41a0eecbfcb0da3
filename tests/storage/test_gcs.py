"""What only the GCS driver does: resumable sessions with offset and tail kept in
storage, resuming from GCS's persisted offset, V4 signed URLs (verified here with the
key's public half, since the emulator checks none), create-only preconditions, and
failing fast on a dead endpoint. Runs against gcp-storage-emulator (tests/conftest.py),
except where the emulator lacks the feature, as each test says."""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from arca.storage.driver import (
    AlreadyExists,
    BackendUnavailable,
    InvalidOffset,
    PathNotFound,
    StorageError,
)
from arca.storage.drivers.gcs import GRANULARITY, WRITER_SUFFIX, GCSDriver, _decode_state

pytestmark = pytest.mark.anyio

MiB = 1 << 20
MakeDriver = Callable[..., GCSDriver]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def make_driver(gcs_endpoint: str, gcs_bucket: str) -> AsyncIterator[MakeDriver]:
    """Drivers on one fresh bucket (options overridable); all closed after the test."""
    made: list[GCSDriver] = []

    def make(**options: Any) -> GCSDriver:
        defaults: dict[str, Any] = {
            "bucket": gcs_bucket,
            "endpoint_url": gcs_endpoint,
            "anonymous": True,
            "chunk_size": 4 * GRANULARITY,
        }
        made.append(GCSDriver(**{**defaults, **options}))
        return made[-1]

    yield make
    for driver in made:
        await driver.close()


async def raw_objects(driver: GCSDriver) -> dict[str, int]:
    page = await driver._client().list_objects(driver.bucket)
    return {item["name"]: int(item["size"]) for item in page.get("items", [])}


async def writer_state(driver: GCSDriver, path: str) -> tuple[str | None, int, bytes]:
    raw = await driver._client().download(driver.bucket, path + WRITER_SUFFIX)
    state = _decode_state(path, raw)
    return state.session, state.offset, state.tail


async def test_session_offset_and_tail_live_in_the_state_object(make_driver: MakeDriver) -> None:
    writer = await make_driver().writer("u/data")
    await writer.write(b"a" * (GRANULARITY + 1000))  # one whole 256 KiB unit and a tail
    await writer.close()
    session, offset, tail = await writer_state(make_driver(), "u/data")
    assert session is not None
    assert session.startswith("http://127.0.0.1")
    assert (offset, tail) == (GRANULARITY, b"a" * 1000)
    assert "u/data" not in await raw_objects(make_driver())  # nothing visible before commit
    resumed = await make_driver().writer("u/data", append=True)
    assert resumed.size == GRANULARITY + 1000
    await resumed.write(b"b" * 10)
    await resumed.commit()
    assert await make_driver().get("u/data") == b"a" * (GRANULARITY + 1000) + b"b" * 10
    assert await raw_objects(make_driver()) == {"u/data": GRANULARITY + 1010}


async def test_small_writes_never_start_a_session(make_driver: MakeDriver) -> None:
    writer = await make_driver().writer("small")
    await writer.write(b"tiny")
    await writer.close()
    assert await writer_state(make_driver(), "small") == (None, 0, b"tiny")
    resumed = await make_driver().writer("small", append=True)
    await resumed.commit()  # one media upload
    assert await make_driver().get("small") == b"tiny"


async def test_a_writer_holds_at_most_one_chunk_in_memory(make_driver: MakeDriver) -> None:
    driver = make_driver()
    writer = await driver.writer("big")
    data = os.urandom(3 * MiB + 5)
    for start in range(0, len(data), 64 * 1024):
        await writer.write(data[start : start + 64 * 1024])
        assert len(writer._buffer) < driver.chunk_size  # type: ignore[attr-defined]
    await writer.commit()
    assert await make_driver().get("big") == data


async def crash_after_sending_a_chunk(make_driver: MakeDriver, path: str, chunk: bytes) -> None:
    """A writer that records one 256 KiB unit, then is killed (no close) after sending
    `chunk` (a whole chunk: it goes out) that it never recorded."""
    writer = await make_driver().writer(path)
    await writer.write(b"1" * GRANULARITY)
    await writer.close()
    crashed = await make_driver().writer(path, append=True)
    await crashed.write(chunk)
    session, offset, _ = await writer_state(make_driver(), path)
    assert session is not None
    assert offset == GRANULARITY  # the state still counts only the first unit


async def test_a_session_ahead_of_its_state_resumes_at_the_recorded_size(
    make_driver: MakeDriver,
) -> None:
    """After a writer was killed having sent bytes it never recorded, another process
    resumes at the size the state counts; the same bytes written again are not sent
    twice (a session cannot be rewound) and the object comes out whole."""
    chunk = os.urandom(4 * GRANULARITY)
    await crash_after_sending_a_chunk(make_driver, "u/data", chunk)
    resumed = await make_driver().writer("u/data", append=True)
    assert resumed.size == GRANULARITY
    await resumed.write(chunk[:1000])  # resumed in pieces, across another process
    await resumed.close()
    resumed = await make_driver().writer("u/data", append=True)
    assert resumed.size == GRANULARITY + 1000
    await resumed.write(chunk[1000:] + b"tail")
    await resumed.commit()
    assert await make_driver().get("u/data") == b"1" * GRANULARITY + chunk + b"tail"


async def test_other_bytes_than_the_session_holds_never_finish_the_object(
    make_driver: MakeDriver,
) -> None:
    """The resumed upload sends different bytes where the session already holds some
    (another replica's, or a killed writer's): GCS's crc32c of the finished object
    differs from what was written, so commit refuses and leaves no object behind."""
    await crash_after_sending_a_chunk(make_driver, "u/data", b"X" * (4 * GRANULARITY))
    resumed = await make_driver().writer("u/data", append=True)
    await resumed.write(b"Y" * (4 * GRANULARITY) + b"tail")
    with pytest.raises(StorageError, match="crc32c"):
        await resumed.commit()
    assert "u/data" not in await raw_objects(make_driver())
    await resumed.close()  # what the registry does after a failed commit: nothing left to do
    with pytest.raises(PathNotFound):  # the session is finished: the upload must restart
        await make_driver().writer("u/data", append=True)


async def test_a_writer_cut_back_below_what_the_session_holds_checks_the_rest(
    make_driver: MakeDriver,
) -> None:
    """The registry cuts an upload back to the size it recorded when a process was
    killed between closing the writer and recording the size: GCS already holds the
    bytes after it, so the re-sent bytes are checked against them, not sent."""
    first, second = os.urandom(GRANULARITY), os.urandom(GRANULARITY)
    for replay, finishes in ((second, True), (os.urandom(GRANULARITY), False)):
        path = f"u/{finishes}"
        writer = await make_driver().writer(path)
        await writer.write(first)
        await writer.close()
        writer = await make_driver().writer(path, append=True)
        await writer.write(second)
        await writer.close()
        resumed = await make_driver().writer(path, append=True)
        with pytest.raises(InvalidOffset):
            await resumed.truncate(1000)  # a size it was never saved at
        await resumed.truncate(GRANULARITY)
        assert resumed.size == GRANULARITY
        await resumed.write(replay)
        if finishes:
            await resumed.commit()
            assert await make_driver().get(path) == first + second
        else:
            with pytest.raises(StorageError, match="crc32c"):
                await resumed.commit()
            assert not await make_driver().exists(path)


async def test_a_finished_or_expired_session_is_path_not_found(make_driver: MakeDriver) -> None:
    driver = make_driver()
    writer = await driver.writer("u/data")
    await writer.write(b"1" * GRANULARITY)
    await writer.close()
    session, _, _ = await writer_state(driver, "u/data")
    assert session is not None
    stale = await driver._client().download(driver.bucket, "u/data" + WRITER_SUFFIX)
    other = await driver.writer("u/data", append=True)
    await other.commit()
    # A stale copy of the state (a replica that lost a race) names a finished session.
    await driver._client().upload(driver.bucket, "u/data" + WRITER_SUFFIX, stale)
    with pytest.raises(PathNotFound):
        await driver.writer("u/data", append=True)


# -- create-only ----------------------------------------------------------------------


class _PreconditionEndpoint(BaseHTTPRequestHandler):
    """Answers every upload as GCS answers one whose ifGenerationMatch=0 fails (412),
    recording the query, since gcp-storage-emulator ignores the precondition."""

    queries: list[dict[str, list[str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).queries.append(parse_qs(urlsplit(self.path).query))
        body = json.dumps({"error": {"code": 412, "message": "conditionNotMet"}}).encode()
        self.send_response(412)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def precondition_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PreconditionEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_create_only_sends_if_generation_match_0_and_reads_412_as_already_exists(
    precondition_endpoint: str,
) -> None:
    driver = GCSDriver("b", endpoint_url=precondition_endpoint, anonymous=True)
    _PreconditionEndpoint.queries.clear()
    try:
        with pytest.raises(AlreadyExists):
            await driver.put("tags/v1/link", b"x", if_absent=True)
    finally:
        await driver.close()
    # Sent once: a retried create-only upload that had landed would see its own 412.
    [query] = _PreconditionEndpoint.queries
    assert query["ifGenerationMatch"] == ["0"]
    assert query["name"] == ["tags/v1/link"]


class _ReplacedEndpoint(BaseHTTPRequestHandler):
    """GCS as it answers a compare-and-delete whose object was replaced between the read
    and the delete: metadata and media of generation 7, then 412 to the delete sent
    with ifGenerationMatch=7 (gcp-storage-emulator ignores the precondition)."""

    requests: list[tuple[str, str, dict[str, list[str]]]] = []

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        type(self).requests.append(("GET", unquote(url.path), query))
        if query.get("alt") == ["media"]:
            self._answer(200, b"digest-1")
        else:
            item = {
                "name": "t/link",
                "size": "8",
                "generation": "7",
                "updated": "2026-01-01T00:00:00Z",
            }
            self._answer(200, json.dumps(item).encode())

    def do_DELETE(self) -> None:
        url = urlsplit(self.path)
        type(self).requests.append(("DELETE", unquote(url.path), parse_qs(url.query)))
        self._answer(
            412, json.dumps({"error": {"code": 412, "message": "conditionNotMet"}}).encode()
        )

    def log_message(self, *args: object) -> None:
        pass


async def test_delete_if_deletes_only_the_generation_it_read_and_reads_412_as_replaced() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReplacedEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = GCSDriver(
        "b", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}", anonymous=True
    )
    _ReplacedEndpoint.requests.clear()
    try:
        assert not await driver.delete_if("t/link", b"digest-1")
        assert not await driver.delete_if("t/link", b"digest-2")  # other bytes: no delete
    finally:
        await driver.close()
        server.shutdown()
        server.server_close()
    methods = [(method, query) for method, _, query in _ReplacedEndpoint.requests]
    media = [query for method, query in methods if query.get("alt") == ["media"]]
    assert media == [{"alt": ["media"], "generation": ["7"]}] * 2  # that generation's bytes
    deletes = [query for method, query in methods if method == "DELETE"]
    assert deletes == [{"ifGenerationMatch": ["7"]}]  # once: the 412 is not retried


# -- signed URLs ----------------------------------------------------------------------


async def test_signed_url_is_a_valid_v4_signature_by_the_key(
    make_driver: MakeDriver, gcs_key_file: str
) -> None:
    driver = make_driver(redirect=True, credentials_file=gcs_key_file)
    await driver.put("blobs/x/data", b"served directly")
    url = await driver.url_for("blobs/x/data", expires=120)
    assert url is not None
    assert httpx.get(url, timeout=10).content == b"served directly"  # the emulator serves it
    # The emulator checks no signature: check it as GCS would, with the public key.
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    signature = binascii.unhexlify(query.pop("X-Goog-Signature")[0])
    canonical_query = parts.query.rsplit("&X-Goog-Signature=", 1)[0]
    canonical = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    credential = unquote(query["X-Goog-Credential"][0])
    email, scope = credential.split("/", 1)
    assert email == "arca-test@arca-test.iam.gserviceaccount.com"
    to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            query["X-Goog-Date"][0],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = serialization.load_pem_private_key(
        json.loads(Path(gcs_key_file).read_text())["private_key"].encode(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    key.public_key().verify(signature, to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert query["X-Goog-Expires"] == ["120"]
    assert await make_driver(redirect=False).url_for("blobs/x/data") is None


async def test_public_endpoint_url_names_the_host_clients_reach(
    make_driver: MakeDriver, gcs_key_file: str
) -> None:
    driver = make_driver(
        redirect=True, credentials_file=gcs_key_file, public_endpoint_url="https://gcs.example"
    )
    url = await driver.url_for("blobs/x/data")
    assert url is not None
    assert url.startswith(f"https://gcs.example/{driver.bucket}/blobs/x/data?")


# -- failures --------------------------------------------------------------------------


async def test_a_dead_endpoint_is_backend_unavailable_within_seconds() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    driver = GCSDriver(
        "b",
        endpoint_url=f"http://127.0.0.1:{port}",
        anonymous=True,
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


async def test_check_refuses_a_missing_bucket(make_driver: MakeDriver) -> None:
    with pytest.raises(BackendUnavailable, match="not usable"):
        await make_driver(bucket="arca-no-such-bucket").check()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"chunk_size": GRANULARITY + 1}, "chunk_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_unusable_options_are_refused_naming_the_option(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        GCSDriver("b", anonymous=True, **options)
