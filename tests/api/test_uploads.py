from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tests.api.helpers import error_code, push_blob, sha256
from tests.conftest import ClientFactory
from tests.doubles import CountingDriver


def open_session(client, name="team/app"):
    response = client.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202
    assert response.headers["Range"] == "0-0"
    return response.headers["Location"]


def test_monolithic_post_then_put_stores_blob(client):
    data = os.urandom(5000)
    location = open_session(client)
    response = client.put(f"{location}?digest={sha256(data)}", content=data)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == sha256(data)
    assert response.headers["Location"] == f"/v2/team/app/blobs/{sha256(data)}"
    assert client.get(f"/v2/team/app/blobs/{sha256(data)}").content == data


def test_single_post_with_digest_stores_blob(client):
    data = b"hello world"
    digest = push_blob(client, "app", data)
    head = client.head(f"/v2/app/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.content == b""


def test_chunked_upload_with_content_range(client):
    data = os.urandom(3 * 1024 * 1024 + 17)
    location = open_session(client)
    cut = [0, 1_000_000, 2_500_000, len(data)]
    for start, end in itertools.pairwise(cut):
        response = client.patch(
            location,
            content=data[start:end],
            headers={
                "Content-Range": f"{start}-{end - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert response.status_code == 202
        assert response.headers["Range"] == f"0-{end - 1}"
        location = response.headers["Location"]
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == f"0-{len(data) - 1}"
    assert client.put(f"{location}?digest={sha256(data)}").status_code == 201
    assert client.get(f"/v2/team/app/blobs/{sha256(data)}").content == data


def test_streamed_patch_without_content_range_appends(client):
    location = open_session(client)
    client.patch(location, content=b"abc")
    client.patch(location, content=b"def")
    assert client.put(f"{location}?digest={sha256(b'abcdef')}").status_code == 201


def test_patch_out_of_order_returns_416_with_current_range(client):
    location = open_session(client)
    client.patch(location, content=b"abcd", headers={"Content-Range": "0-3"})
    response = client.patch(location, content=b"xyz", headers={"Content-Range": "10-12"})
    assert response.status_code == 416
    assert response.headers["Range"] == "0-3"
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    # The session is intact: the right chunk still goes through.
    response = client.patch(location, content=b"ef", headers={"Content-Range": "4-5"})
    assert response.status_code == 202
    assert client.put(f"{location}?digest={sha256(b'abcdef')}").status_code == 201


def test_repeated_chunk_returns_416(client):
    location = open_session(client)
    client.patch(location, content=b"abcd", headers={"Content-Range": "0-3"})
    response = client.patch(location, content=b"abcd", headers={"Content-Range": "0-3"})
    assert response.status_code == 416


def test_final_chunk_in_put(client):
    location = open_session(client)
    client.patch(location, content=b"abc", headers={"Content-Range": "0-2"})
    response = client.put(
        f"{location}?digest={sha256(b'abcdef')}", content=b"def", headers={"Content-Range": "3-5"}
    )
    assert response.status_code == 201


def test_empty_blob(client):
    location = open_session(client)
    empty = sha256(b"")
    assert client.put(f"{location}?digest={empty}").status_code == 201
    response = client.get(f"/v2/team/app/blobs/{empty}")
    assert response.status_code == 200
    assert response.content == b""


def test_wrong_digest_is_rejected_and_keeps_nothing(client):
    location = open_session(client)
    client.patch(location, content=b"payload")
    wrong = sha256(b"other")
    response = client.put(f"{location}?digest={wrong}")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert client.head(f"/v2/team/app/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/team/app/blobs/{sha256(b'payload')}").status_code == 404
    assert client.get(location).status_code == 404


def test_sha512_digest_closes_upload(client):
    import hashlib

    data = os.urandom(100_000)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = open_session(client)
    client.patch(location, content=data)
    response = client.put(f"{location}?digest={digest}")
    assert response.status_code == 201
    assert client.get(f"/v2/team/app/blobs/{digest}").content == data


def test_cancel_forgets_the_session(client):
    location = open_session(client)
    client.patch(location, content=b"abc")
    assert client.delete(location).status_code == 204
    assert error_code(client.get(location)) == "BLOB_UPLOAD_UNKNOWN"


def test_session_of_another_repository_is_unknown(client):
    location = open_session(client, "one")
    other = location.replace("/v2/one/", "/v2/two/")
    assert client.patch(other, content=b"x").status_code == 404


def test_mount_from_another_repository(client):
    digest = push_blob(client, "source", b"shared layer")
    response = client.post(f"/v2/target/blobs/uploads/?mount={digest}&from=source")
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/target/blobs/{digest}"
    assert client.get(f"/v2/target/blobs/{digest}").content == b"shared layer"


def test_mount_without_from_finds_blob_anywhere(client):
    digest = push_blob(client, "source", b"shared layer")
    response = client.post(f"/v2/target/blobs/uploads/?mount={digest}")
    assert response.status_code == 201


def test_mount_of_unknown_blob_opens_a_session(client):
    digest = sha256(b"nowhere")
    response = client.post(f"/v2/target/blobs/uploads/?mount={digest}&from=source")
    assert response.status_code == 202
    assert "/blobs/uploads/" in response.headers["Location"]


def test_mount_from_repository_without_the_blob_opens_a_session(client):
    digest = push_blob(client, "source", b"private")
    push_blob(client, "elsewhere", b"x")
    response = client.post(f"/v2/target/blobs/uploads/?mount={digest}&from=elsewhere")
    assert response.status_code == 202


def test_upload_survives_restart_and_closes_without_rereading(
    client_factory: ClientFactory, tmp_path: Path
):
    """Three chunks, a new app (and driver) between each; close reads no data back."""
    from arca.storage.drivers.filesystem import FilesystemDriver

    chunks = [os.urandom(1_500_000), os.urandom(2_000_000), os.urandom(700_001)]
    data = b"".join(chunks)
    first = client_factory(FilesystemDriver(str(tmp_path)))
    location = open_session(first)
    offset = 0
    drivers = []
    for chunk in chunks:
        driver = CountingDriver(FilesystemDriver(str(tmp_path)))
        drivers.append(driver)
        response = client_factory(driver).patch(
            location,
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
        )
        assert response.status_code == 202, response.text
        offset += len(chunk)
    closing = CountingDriver(FilesystemDriver(str(tmp_path)))
    response = client_factory(closing).put(f"{location}?digest={sha256(data)}")
    assert response.status_code == 201, response.text
    session_id = location.rsplit("/", 1)[1]
    for driver in [*drivers, closing]:
        assert driver.reads_of(lambda path: path == f"uploads/{session_id}/data") == []
    assert (
        client_factory(FilesystemDriver(str(tmp_path)))
        .get(f"/v2/team/app/blobs/{sha256(data)}")
        .content
        == data
    )


def test_filesystem_and_memory_advertise_no_chunk_minimum(client):
    assert "OCI-Chunk-Min-Length" not in client.post("/v2/app/blobs/uploads/").headers


@pytest.mark.anyio
async def test_abandoned_sessions_are_purged_and_live_ones_kept():
    import dataclasses

    from arca.config import Settings
    from arca.registry.registry import Registry
    from arca.registry.upload_sessions import SessionState
    from arca.storage import layout
    from arca.storage.drivers.memory import MemoryDriver

    driver = MemoryDriver()
    registry = Registry(driver, Settings())
    abandoned = await registry.uploads.start("app")
    active = await registry.uploads.start("app")
    path = layout.upload_state(abandoned.session_id)
    state = SessionState.decode(await driver.get(path))
    await driver.put(path, dataclasses.replace(state, updated=state.updated - 7200).encode())

    assert await registry.uploads.purge_expired(max_idle=3600) == [abandoned.session_id]
    assert [s async for s in driver.list("uploads")] == [active.session_id]
    status = await registry.uploads.status("app", active.session_id)
    assert status.offset == 0


def _session_files(tmp_path: Path, location: str) -> tuple[Path, Path]:
    session = tmp_path / "uploads" / location.rsplit("/", 1)[1]
    return session / "state", session / "data"


def test_a_session_whose_state_a_power_cut_emptied_is_unknown_and_pushing_again_works(
    client_factory: ClientFactory, tmp_path: Path
):
    """A session's state is written unsynced (docs/storage.md, "Uploads"): after a
    power cut it may be an empty or unreadable file. That session is BLOB_UPLOAD_UNKNOWN
    to every request (never a 500, never a blob), and the purge takes it away."""
    from arca.storage.drivers.filesystem import FilesystemDriver

    client = client_factory(FilesystemDriver(str(tmp_path)))
    data = os.urandom(100_000)
    location = open_session(client)
    assert client.patch(location, content=data[:60_000]).status_code == 202
    state, _ = _session_files(tmp_path, location)
    for garbage in (b"", b"\x00", b"\xa1\x64name"):
        state.write_bytes(garbage)
        for response in (
            client.get(location),
            client.patch(location, content=data[60_000:]),
            client.put(f"{location}?digest={sha256(data)}", content=data[60_000:]),
        ):
            assert response.status_code == 404, response.text
            assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"
    assert client.head(f"/v2/team/app/blobs/{sha256(data)}").status_code == 404
    location = open_session(client)
    assert client.put(f"{location}?digest={sha256(data)}", content=data).status_code == 201
    assert client.get(f"/v2/team/app/blobs/{sha256(data)}").content == data


def test_a_session_whose_state_a_power_cut_set_back_resumes_from_the_older_offset(
    client_factory: ClientFactory, tmp_path: Path
):
    """After a power cut the unsynced state may be an earlier one while the data (synced
    before every state) holds more: the session answers the earlier offset, the bytes
    past it are cut off, and the blob closes with exactly the client's content."""
    from arca.storage.drivers.filesystem import FilesystemDriver

    client = client_factory(FilesystemDriver(str(tmp_path)))
    data = os.urandom(3_000_000)
    location = open_session(client)
    response = client.patch(location, content=data[:1_000_000])
    assert response.status_code == 202
    state, stored = _session_files(tmp_path, location)
    earlier = state.read_bytes()
    location = response.headers["Location"]
    assert client.patch(location, content=data[1_000_000:2_000_000]).status_code == 202
    assert stored.stat().st_size == 2_000_000
    state.write_bytes(earlier)  # what the disk held of the state when the power went

    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999999"
    response = client.patch(
        location,
        content=data[2_000_000:],
        headers={"Content-Range": f"2000000-{len(data) - 1}"},
    )
    assert response.status_code == 416
    assert response.headers["Range"] == "0-999999"
    response = client.patch(
        location,
        content=data[1_000_000:],
        headers={"Content-Range": f"1000000-{len(data) - 1}"},
    )
    assert response.status_code == 202, response.text
    assert client.put(f"{location}?digest={sha256(data)}").status_code == 201
    assert client.get(f"/v2/team/app/blobs/{sha256(data)}").content == data
