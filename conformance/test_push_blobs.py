"""Push, blobs: monolithic, single POST, chunked, status, cancel, mount.

end-4a, end-4b, end-5, end-6, end-11, end-13, end-14.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from conformance._client import (
    UUID_RE,
    Registry,
    describe,
    expect_digest_header,
    expect_error,
    expect_status,
    range_end,
    resolve_location,
    with_query,
)
from conformance._oci import EMPTY_JSON, Blob, digest_of, random_bytes

pytestmark = pytest.mark.category("push")

OCTETS = {"Content-Type": "application/octet-stream"}


def chunk_size(response: httpx.Response, wanted: int = 1024) -> int:
    """The size for non-final chunks: ours, unless the registry asks for more.

    OCI-Chunk-Min-Length, when advertised on the POST, is a size in bytes that
    every chunk but the last SHOULD reach.
    """
    value = response.headers.get("OCI-Chunk-Min-Length")
    if value is None:
        return wanted
    assert value.strip().isdigit(), f"bad OCI-Chunk-Min-Length {value!r}"
    assert int(value) > 0, f"bad OCI-Chunk-Min-Length {value!r}"
    return max(wanted, int(value))


def patch(registry: Registry, location: str, data: bytes, start: int | None) -> httpx.Response:
    headers = dict(OCTETS)
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return registry.request("PATCH", location, content=data, headers=headers)


def expect_pullable(registry: Registry, repo: str, blob: Blob, created: httpx.Response) -> None:
    """A 201 for a blob: Location is a pullable blob URL and the bytes are right."""
    expect_status(created, 201)
    expect_digest_header(created, blob.data)
    pulled = registry.follow(registry.get(resolve_location(created)))
    expect_status(pulled, 200)
    assert pulled.content == blob.data, f"blob Location serves other bytes: {describe(pulled)}"
    by_digest = registry.get_blob(repo, blob.digest)
    expect_status(by_digest, 200)
    assert by_digest.content == blob.data


@pytest.mark.spec("end-4a", "end-6")
def test_monolithic_post_then_put(registry: Registry, repo: str) -> None:
    blob = Blob(random_bytes(5000))
    started = registry.start_upload(repo)
    expect_status(started, 202)
    location = resolve_location(started)
    assert UUID_RE.search(location), f"upload Location carries no session UUID: {location}"
    created = registry.request(
        "PUT", with_query(location, digest=blob.digest), content=blob.data, headers=OCTETS
    )
    expect_pullable(registry, repo, blob, created)


@pytest.mark.spec("end-4a")
def test_upload_sessions_are_unique(registry: Registry, repo: str) -> None:
    sessions = set()
    for _ in range(3):
        location = registry.open_session(repo)
        found = UUID_RE.search(location)
        assert found, f"upload Location carries no session UUID: {location}"
        sessions.add(found.group(0))
    assert len(sessions) == 3, sessions


@pytest.mark.spec("end-4b")
def test_single_post_upload_as_the_spec_allows(registry: Registry, repo: str) -> None:
    """201 when supported; otherwise 202 with a Location the client then PUTs to."""
    blob = Blob(random_bytes(3000))
    response = registry.request(
        "POST",
        with_query(f"/v2/{repo}/blobs/uploads/", digest=blob.digest),
        content=blob.data,
        headers=OCTETS,
    )
    expect_status(response, 201, 202)
    if response.status_code == 202:
        location = resolve_location(response)
        response = registry.request(
            "PUT", with_query(location, digest=blob.digest), content=blob.data, headers=OCTETS
        )
    expect_pullable(registry, repo, blob, response)


@pytest.mark.spec("end-4b")
@pytest.mark.reference_xfail(
    "single POST ?digest= is not implemented (answers 202, drops the body)"
)
def test_single_post_upload_creates_the_blob(registry: Registry, repo: str) -> None:
    """The optional single-request push (MAY): a registry claiming it answers 201."""
    blob = Blob(random_bytes(3000))
    response = registry.request(
        "POST",
        with_query(f"/v2/{repo}/blobs/uploads/", digest=blob.digest),
        content=blob.data,
        headers=OCTETS,
    )
    expect_pullable(registry, repo, blob, response)


@pytest.mark.spec("end-4b")
@pytest.mark.reference_xfail(
    "single POST ?digest= is not implemented (answers 202, drops the body)"
)
def test_single_post_with_wrong_digest_is_rejected(registry: Registry, repo: str) -> None:
    blob = Blob(random_bytes(300))
    wrong = digest_of(random_bytes(8))
    response = registry.request(
        "POST",
        with_query(f"/v2/{repo}/blobs/uploads/", digest=wrong),
        content=blob.data,
        headers=OCTETS,
    )
    expect_error(response, [400], ["DIGEST_INVALID"])
    expect_status(registry.head_blob(repo, wrong), 404)
    expect_status(registry.head_blob(repo, blob.digest), 404)


@pytest.mark.spec("end-4a", "end-5", "end-6", "OCI-Chunk-Min-Length")
def test_chunked_upload_with_content_range(registry: Registry, repo: str) -> None:
    started = registry.start_upload(repo)
    expect_status(started, 202)
    size = chunk_size(started)
    blob = Blob(random_bytes(2 * size + 321))
    location = resolve_location(started)
    offset = 0
    for start in range(0, blob.size, size):
        piece = blob.data[start : start + size]
        response = patch(registry, location, piece, offset)
        expect_status(response, 202)
        offset += len(piece)
        assert range_end(response) == offset - 1, describe(response)
        location = resolve_location(response)
    created = registry.request("PUT", with_query(location, digest=blob.digest))
    expect_pullable(registry, repo, blob, created)


@pytest.mark.spec("end-5", "end-6")
def test_chunked_upload_final_chunk_in_put(registry: Registry, repo: str) -> None:
    started = registry.start_upload(repo)
    expect_status(started, 202)
    size = chunk_size(started)
    blob = Blob(random_bytes(size + 200))
    response = patch(registry, resolve_location(started), blob.data[:size], 0)
    expect_status(response, 202)
    assert range_end(response) == size - 1
    created = registry.request(
        "PUT",
        with_query(resolve_location(response), digest=blob.digest),
        content=blob.data[size:],
        headers={**OCTETS, "Content-Range": f"{size}-{blob.size - 1}"},
    )
    expect_pullable(registry, repo, blob, created)


@pytest.mark.spec("end-5", "end-6")
def test_chunked_upload_without_content_range(registry: Registry, repo: str) -> None:
    """PATCHes without Content-Range append (the streamed upload clients use)."""
    started = registry.start_upload(repo)
    expect_status(started, 202)
    size = chunk_size(started)
    blob = Blob(random_bytes(size + 500))
    first = patch(registry, resolve_location(started), blob.data[:size], None)
    expect_status(first, 202)
    assert range_end(first) == size - 1
    second = patch(registry, resolve_location(first), blob.data[size:], None)
    expect_status(second, 202)
    assert range_end(second) == blob.size - 1
    created = registry.request("PUT", with_query(resolve_location(second), digest=blob.digest))
    expect_pullable(registry, repo, blob, created)


@pytest.mark.spec("end-5", "end-13")
@pytest.mark.reference_xfail("chunks are not checked against the session offset (no 416)")
def test_out_of_order_chunk_is_416(registry: Registry, repo: str) -> None:
    started = registry.start_upload(repo)
    expect_status(started, 202)
    size = chunk_size(started)
    blob = Blob(random_bytes(3 * size))
    first = patch(registry, resolve_location(started), blob.data[:size], 0)
    expect_status(first, 202)
    location = resolve_location(first)
    skipped = patch(registry, location, blob.data[2 * size :], 2 * size)
    expect_error(skipped, [416], [])
    # The session survives at its last good offset and can be completed.
    status = registry.get(location)
    expect_status(status, 204)
    assert range_end(status) == size - 1, describe(status)
    location = resolve_location(status)
    rest = patch(registry, location, blob.data[size:], size)
    expect_status(rest, 202)
    created = registry.request("PUT", with_query(resolve_location(rest), digest=blob.digest))
    expect_pullable(registry, repo, blob, created)


@pytest.mark.spec("end-5")
@pytest.mark.reference_xfail("chunks are not checked against the session offset (no 416)")
def test_repeated_chunk_is_416(registry: Registry, repo: str) -> None:
    started = registry.start_upload(repo)
    expect_status(started, 202)
    size = chunk_size(started)
    blob = Blob(random_bytes(2 * size))
    first = patch(registry, resolve_location(started), blob.data[:size], 0)
    expect_status(first, 202)
    location = resolve_location(first)
    again = patch(registry, location, blob.data[:size], 0)
    expect_error(again, [416], [])
    status = registry.get(location)
    expect_status(status, 204)
    assert range_end(status) == size - 1, describe(status)


@pytest.mark.spec("end-13")
def test_upload_status_reports_offset_and_location(registry: Registry, repo: str) -> None:
    started = registry.start_upload(repo)
    expect_status(started, 202)
    size = chunk_size(started)
    blob = Blob(random_bytes(size + 77))
    first = patch(registry, resolve_location(started), blob.data[:size], 0)
    expect_status(first, 202)
    status = registry.get(resolve_location(first))
    expect_status(status, 204)
    assert range_end(status) == size - 1, describe(status)
    # The Location from the status response continues the session.
    rest = patch(registry, resolve_location(status), blob.data[size:], size)
    expect_status(rest, 202)
    assert range_end(rest) == blob.size - 1
    created = registry.request("PUT", with_query(resolve_location(rest), digest=blob.digest))
    expect_pullable(registry, repo, blob, created)


@pytest.mark.spec("end-14", "end-13")
def test_cancel_upload(registry: Registry, repo: str) -> None:
    started = registry.start_upload(repo)
    expect_status(started, 202)
    blob = Blob(random_bytes(chunk_size(started)))
    first = patch(registry, resolve_location(started), blob.data, 0)
    expect_status(first, 202)
    location = resolve_location(first)
    cancelled = registry.request("DELETE", location)
    expect_status(cancelled, 204)
    expect_error(registry.get(location), [404], ["BLOB_UPLOAD_UNKNOWN"])
    finished = registry.request("PUT", with_query(location, digest=blob.digest))
    expect_error(finished, [404], ["BLOB_UPLOAD_UNKNOWN"])
    expect_status(registry.head_blob(repo, blob.digest), 404)


@pytest.mark.spec("end-5", "end-6", "end-13", "end-14")
def test_unknown_upload_session_is_404(registry: Registry, repo: str) -> None:
    registry.push_blob(repo, Blob(random_bytes(16)))  # the repository exists
    location = f"{registry.url}/v2/{repo}/blobs/uploads/{uuid.uuid4()}"
    blob = Blob(random_bytes(16))
    # The spec fixes the status, not the code; both upload codes describe the case.
    codes = ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"]
    expect_error(registry.get(location), [404], codes)
    expect_error(patch(registry, location, blob.data, 0), [404], codes)
    put = registry.request("PUT", with_query(location, digest=blob.digest), content=blob.data)
    expect_error(put, [404], codes)
    expect_error(registry.request("DELETE", location), [404], codes)
    expect_status(registry.head_blob(repo, blob.digest), 404)


@pytest.mark.spec("end-4a", "end-6")
def test_empty_blob(registry: Registry, repo: str) -> None:
    for blob in (Blob(b""), Blob(EMPTY_JSON)):
        location = registry.open_session(repo)
        created = registry.request(
            "PUT", with_query(location, digest=blob.digest), content=blob.data
        )
        expect_pullable(registry, repo, blob, created)
        head = registry.head_blob(repo, blob.digest)
        expect_status(head, 200)
        assert int(head.headers.get("Content-Length", -1)) == blob.size


@pytest.mark.spec("end-6", "content digests (sha512)")
def test_sha512_blob(registry: Registry, repo: str) -> None:
    blob = Blob(random_bytes(2048), algorithm="sha512")
    location = registry.open_session(repo)
    created = registry.request(
        "PUT", with_query(location, digest=blob.digest), content=blob.data, headers=OCTETS
    )
    expect_pullable(registry, repo, blob, created)
    head = registry.head_blob(repo, blob.digest)
    expect_status(head, 200)
    assert int(head.headers.get("Content-Length", -1)) == blob.size
    expect_digest_header(head, blob.data)


@pytest.mark.spec("end-6")
def test_put_with_mismatched_digest_is_rejected(registry: Registry, repo: str) -> None:
    blob = Blob(random_bytes(1000))
    wrong = digest_of(random_bytes(8))
    location = registry.open_session(repo)
    response = registry.request("PUT", with_query(location, digest=wrong), content=blob.data)
    expect_error(response, [400], ["DIGEST_INVALID"])
    expect_status(registry.head_blob(repo, wrong), 404)
    expect_status(registry.head_blob(repo, blob.digest), 404)


@pytest.mark.spec("end-6")
def test_put_with_malformed_digest_is_rejected(registry: Registry, repo: str) -> None:
    blob = Blob(random_bytes(100))
    for digest in ("sha256:not-hex", "sha256:" + "a" * 10, "nonsense"):
        location = registry.open_session(repo)
        response = registry.request("PUT", with_query(location, digest=digest), content=blob.data)
        expect_error(response, [400], ["DIGEST_INVALID"])
    expect_status(registry.head_blob(repo, blob.digest), 404)


@pytest.mark.spec("end-4a", "end-6")
def test_reupload_of_existing_blob_succeeds(registry: Registry, repo: str) -> None:
    blob = Blob(random_bytes(600))
    registry.push_blob(repo, blob)
    location = registry.open_session(repo)
    again = registry.request("PUT", with_query(location, digest=blob.digest), content=blob.data)
    expect_pullable(registry, repo, blob, again)


@pytest.mark.spec("end-11")
def test_mount_blob_from_another_repository(registry: Registry) -> None:
    source, target = registry.new_repo("mount-source"), registry.new_repo("mount-target")
    blob = Blob(random_bytes(1500))
    registry.push_blob(source, blob)
    response = registry.start_upload(target, mount=blob.digest, **{"from": source})
    expect_status(response, 201, 202)
    if response.status_code == 202:  # mounting refused: an ordinary session instead
        location = resolve_location(response)
        response = registry.request(
            "PUT", with_query(location, digest=blob.digest), content=blob.data
        )
    expect_pullable(registry, target, blob, response)
    # The source keeps the blob.
    expect_status(registry.head_blob(source, blob.digest), 200)


@pytest.mark.spec("end-11")
def test_mount_blob_without_from(registry: Registry) -> None:
    """`from` MAY be treated as optional: 201 if mounted, else a 202 upload session."""
    source, target = registry.new_repo("mount-source"), registry.new_repo("mount-nofrom")
    blob = Blob(random_bytes(1500))
    registry.push_blob(source, blob)
    response = registry.start_upload(target, mount=blob.digest)
    expect_status(response, 201, 202)
    if response.status_code == 202:
        location = resolve_location(response)
        response = registry.request(
            "PUT", with_query(location, digest=blob.digest), content=blob.data
        )
    expect_pullable(registry, target, blob, response)


@pytest.mark.spec("end-11")
def test_mount_of_unknown_blob_opens_a_session(registry: Registry) -> None:
    source, target = registry.new_repo("mount-source"), registry.new_repo("mount-unknown")
    registry.push_blob(source, Blob(random_bytes(10)))
    unknown = Blob(random_bytes(700))
    response = registry.start_upload(target, mount=unknown.digest, **{"from": source})
    expect_status(response, 202, 404)  # never 201: there is nothing to mount
    expect_status(registry.head_blob(target, unknown.digest), 404)
    if response.status_code == 404:
        return
    location = resolve_location(response)
    created = registry.request(
        "PUT", with_query(location, digest=unknown.digest), content=unknown.data
    )
    expect_pullable(registry, target, unknown, created)
