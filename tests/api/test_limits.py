"""Abuse limits: the largest blob, and open upload sessions per repository."""

from __future__ import annotations

import pytest

from arca.config import LimitSettings, Settings
from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import error_code, push_blob, sha256

LIMIT = 3 * (1 << 20) + 5  # past a 1 MiB storage block, so a crossing is mid-stream


def limited(client_factory, driver=None, **limits):
    settings = Settings(limits=LimitSettings(**limits))
    return client_factory(driver or MemoryDriver(), settings)


def stored_blobs(driver: MemoryDriver) -> set[str]:
    return {p for p in driver._objects if p.startswith("blobs/")}


def chunks(data: bytes, size: int = 256 * 1024):
    """A body without Content-Length (chunked transfer encoding)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_monolithic_blob_over_the_limit_is_413_and_stores_nothing(client_factory):
    driver = MemoryDriver()
    client = limited(client_factory, driver, blob_max_bytes=LIMIT)
    data = b"x" * (LIMIT + 1)
    response = client.post(f"/v2/app/blobs/uploads/?digest={sha256(data)}", content=data)
    assert response.status_code == 413, response.text
    assert error_code(response) == "SIZE_INVALID"
    assert str(LIMIT) in response.json()["errors"][0]["message"]
    assert not [p for p in driver._objects if not p.startswith("repositories/")]


def test_a_blob_of_exactly_the_limit_is_stored(client_factory):
    client = limited(client_factory, blob_max_bytes=LIMIT)
    push_blob(client, "app", b"y" * LIMIT)
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    data = b"z" * LIMIT
    assert client.patch(location, content=data).status_code == 202
    assert client.put(f"{location}?digest={sha256(data)}").status_code == 201


def test_chunk_whose_length_crosses_the_limit_is_refused_before_a_byte_is_stored(
    client_factory,
):
    driver = MemoryDriver()
    client = limited(client_factory, driver, blob_max_bytes=LIMIT)
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    first = b"a" * (LIMIT - 10)
    assert client.patch(location, content=first).status_code == 202
    response = client.patch(
        location, content=b"b" * 11, headers={"Content-Range": f"{LIMIT - 10}-{LIMIT}"}
    )
    assert response.status_code == 413, response.text
    assert error_code(response) == "SIZE_INVALID"
    assert client.get(location).headers["Range"] == f"0-{LIMIT - 11}"
    rest = b"b" * 10
    assert client.patch(location, content=rest).status_code == 202
    closed = client.put(f"{location}?digest={sha256(first + rest)}")
    assert closed.status_code == 201, closed.text


def test_streamed_chunk_crossing_the_limit_stops_there_and_loses_nothing_else(client_factory):
    driver = MemoryDriver()
    client = limited(client_factory, driver, blob_max_bytes=LIMIT)
    kept = push_blob(client, "app", b"another blob")
    other = client.post("/v2/app/blobs/uploads/").headers["Location"]
    assert client.patch(other, content=b"other session").status_code == 202
    before = stored_blobs(driver)

    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    response = client.patch(location, content=chunks(b"c" * (2 * LIMIT)))
    assert response.status_code == 413, response.text
    assert error_code(response) == "SIZE_INVALID"
    offset = int(client.get(location).headers["Range"].split("-")[1]) + 1
    assert 0 < offset <= LIMIT  # what was stored before the crossing stays, no more
    assert stored_blobs(driver) == before
    assert client.head(f"/v2/app/blobs/{kept}").status_code == 200
    assert client.get(other).headers["Range"] == f"0-{len(b'other session') - 1}"
    data = b"other session"
    assert client.put(f"{other}?digest={sha256(data)}").status_code == 201


def test_closing_put_crossing_the_limit_is_413(client_factory):
    client = limited(client_factory, blob_max_bytes=LIMIT)
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    data = b"d" * (LIMIT + 1)
    response = client.put(f"{location}?digest={sha256(data)}", content=data)
    assert response.status_code == 413
    assert client.get(location).headers["Range"] == "0-0"


def test_streamed_monolithic_post_crossing_the_limit_stores_nothing(client_factory):
    driver = MemoryDriver()
    client = limited(client_factory, driver, blob_max_bytes=LIMIT)
    data = b"e" * (LIMIT + 1)
    response = client.post(f"/v2/app/blobs/uploads/?digest={sha256(data)}", content=chunks(data))
    assert response.status_code == 413
    assert not [p for p in driver._objects if p.startswith(("uploads/", "blobs/"))]


def test_open_sessions_per_repository_are_limited(client_factory):
    driver = MemoryDriver()
    client = limited(client_factory, driver, upload_sessions_per_repository=3)
    sessions = [client.post("/v2/app/blobs/uploads/").headers["Location"] for _ in range(3)]
    refused = client.post("/v2/app/blobs/uploads/")
    assert refused.status_code == 429, refused.text
    assert error_code(refused) == "TOOMANYREQUESTS"
    message = refused.json()["errors"][0]["message"]
    assert "repository app" in message
    assert "3 open upload sessions" in message
    # Another repository, and a monolithic upload (one request), are not held back.
    assert client.post("/v2/other/blobs/uploads/").status_code == 202
    push_blob(client, "app", b"monolithic")
    # Another process on the same storage counts the same sessions.
    replica = limited(client_factory, driver, upload_sessions_per_repository=3)
    assert replica.post("/v2/app/blobs/uploads/").status_code == 429
    # A cancelled and a finished session free their places.
    assert client.delete(sessions[0]).status_code == 204
    assert client.put(f"{sessions[1]}?digest={sha256(b'')}").status_code == 201
    assert replica.post("/v2/app/blobs/uploads/").status_code == 202
    assert client.post("/v2/app/blobs/uploads/").status_code == 202
    assert client.post("/v2/app/blobs/uploads/").status_code == 429


def test_purged_sessions_free_their_places(client_factory):
    import asyncio

    from arca.app import create_app

    driver = MemoryDriver()
    client = limited(client_factory, driver, upload_sessions_per_repository=2)
    for _ in range(2):
        client.post("/v2/app/blobs/uploads/")
    assert client.post("/v2/app/blobs/uploads/").status_code == 429
    app = create_app(Settings(), driver)
    asyncio.run(app.state.registry.uploads.purge_expired(0, now=1e12))
    assert client.post("/v2/app/blobs/uploads/").status_code == 202


@pytest.mark.parametrize("limits", [{"blob_max_bytes": 0}, {"upload_sessions_per_repository": 0}])
def test_zero_turns_a_limit_off(client_factory, limits):
    client = limited(client_factory, **limits)
    for _ in range(3):
        assert client.post("/v2/app/blobs/uploads/").status_code == 202
    push_blob(client, "app", b"f" * 100)
