"""Every bad input gets the right OCI error and changes nothing that is stored."""

from __future__ import annotations

import json

import pytest

from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import (
    OCI_MANIFEST,
    descriptor,
    error_code,
    image_manifest,
    push_blob,
    sha256,
)

GOOD = b"good layer"


@pytest.fixture
def stored(client_factory):
    """A repository with one tagged manifest, and a snapshot of storage to compare."""
    driver = MemoryDriver()
    client = client_factory(driver)
    manifest = image_manifest(client, "app", [GOOD])
    client.put("/v2/app/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    return client, driver, manifest


def snapshot(driver: MemoryDriver) -> dict[str, bytes]:
    return {p: o.data for p, o in driver._objects.items() if not p.startswith("uploads/")}


def manifest_with(client, **changes) -> bytes:
    base = json.loads(image_manifest(client, "app", [GOOD]))
    base.update(changes)
    return json.dumps(base).encode()


MISSING = sha256(b"never pushed")

CASES = [
    # (id, method, path, body, headers, status, code)
    (
        "wrong-digest",
        "POST",
        f"/v2/app/blobs/uploads/?digest={sha256(b'x')}",
        b"y",
        {},
        400,
        "DIGEST_INVALID",
    ),
    ("malformed-digest", "GET", "/v2/app/blobs/sha256:xyz", None, {}, 400, "DIGEST_INVALID"),
    ("unknown-algorithm", "GET", "/v2/app/blobs/md5:" + "a" * 32, None, {}, 400, "DIGEST_INVALID"),
    ("unknown-blob", "GET", f"/v2/app/blobs/{MISSING}", None, {}, 404, "BLOB_UNKNOWN"),
    ("unknown-blob-head", "HEAD", f"/v2/app/blobs/{MISSING}", None, {}, 404, None),
    ("unknown-blob-delete", "DELETE", f"/v2/app/blobs/{MISSING}", None, {}, 404, "BLOB_UNKNOWN"),
    ("unknown-manifest", "GET", "/v2/app/manifests/nope", None, {}, 404, "MANIFEST_UNKNOWN"),
    (
        "unknown-manifest-digest",
        "GET",
        f"/v2/app/manifests/{MISSING}",
        None,
        {},
        404,
        "MANIFEST_UNKNOWN",
    ),
    (
        "unknown-manifest-delete",
        "DELETE",
        f"/v2/app/manifests/{MISSING}",
        None,
        {},
        404,
        "MANIFEST_UNKNOWN",
    ),
    (
        "unknown-upload",
        "GET",
        "/v2/app/blobs/uploads/" + "0" * 32,
        None,
        {},
        404,
        "BLOB_UPLOAD_UNKNOWN",
    ),
    (
        "malformed-upload-id",
        "PATCH",
        "/v2/app/blobs/uploads/not-a-session",
        b"x",
        {},
        404,
        "BLOB_UPLOAD_UNKNOWN",
    ),
    # %2E: httpx would resolve a literal "/../" before sending; a raw client need not.
    ("name-dotdot", "GET", "/v2/a/%2E%2E/b/tags/list", None, {}, 400, "NAME_INVALID"),
    ("name-uppercase", "GET", "/v2/App/tags/list", None, {}, 400, "NAME_INVALID"),
    ("name-empty-component", "GET", "/v2/a//b/tags/list", None, {}, 400, "NAME_INVALID"),
    ("name-too-long", "GET", "/v2/" + "a" * 256 + "/tags/list", None, {}, 400, "NAME_INVALID"),
    (
        "name-too-long-upload",
        "POST",
        "/v2/" + "a" * 256 + "/blobs/uploads/",
        b"",
        {},
        400,
        "NAME_INVALID",
    ),
    (
        "invalid-tag",
        "PUT",
        "/v2/app/manifests/-bad",
        b"{}",
        {"Content-Type": OCI_MANIFEST},
        400,
        "MANIFEST_INVALID",
    ),
    (
        "tag-too-long",
        "PUT",
        "/v2/app/manifests/" + "t" * 129,
        b"{}",
        {"Content-Type": OCI_MANIFEST},
        400,
        "MANIFEST_INVALID",
    ),
    (
        "malformed-json",
        "PUT",
        "/v2/app/manifests/v1",
        b"{not json",
        {"Content-Type": OCI_MANIFEST},
        400,
        "MANIFEST_INVALID",
    ),
    (
        "not-an-object",
        "PUT",
        "/v2/app/manifests/v1",
        b"[1,2]",
        {"Content-Type": OCI_MANIFEST},
        400,
        "MANIFEST_INVALID",
    ),
    (
        "out-of-order-patch",
        "PATCH",
        "{session}",
        b"abc",
        {"Content-Range": "5-7"},
        416,
        "BLOB_UPLOAD_INVALID",
    ),
    (
        "range-past-end",
        "GET",
        "/v2/app/blobs/" + sha256(GOOD),
        None,
        {"Range": "bytes=1000-2000"},
        416,
        "SIZE_INVALID",
    ),
    ("bad-page-size", "GET", "/v2/app/tags/list?n=-1", None, {}, 400, "UNSUPPORTED"),
    ("close-without-digest", "PUT", "{session}", b"", {}, 400, "BLOB_UPLOAD_INVALID"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_is_rejected_and_changes_nothing(
    stored, method, path, body, headers, status, code
):
    client, driver, _ = stored
    if "{session}" in path:
        path = client.post("/v2/app/blobs/uploads/").headers["Location"]
    before = snapshot(driver)
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    if code is not None:
        assert error_code(response) == code
        assert response.json()["errors"][0]["message"]
    assert snapshot(driver) == before


@pytest.mark.parametrize(
    ("case", "content_type", "expected"),
    [
        ("missing-blob", OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN"),
        (
            "media-type-mismatch",
            "application/vnd.docker.distribution.manifest.v2+json",
            "MANIFEST_INVALID",
        ),
        ("bad-schema-version", OCI_MANIFEST, "MANIFEST_INVALID"),
        ("digest-reference-mismatch", OCI_MANIFEST, "DIGEST_INVALID"),
    ],
)
def test_bad_manifest_is_rejected_and_changes_nothing(stored, case, content_type, expected):
    client, driver, _ = stored
    reference = "v1"
    if case == "missing-blob":
        data = manifest_with(client, layers=[descriptor(b"absent", "application/octet-stream")])
    elif case == "bad-schema-version":
        data = manifest_with(client, schemaVersion=1)
    else:
        data = manifest_with(client)
    if case == "digest-reference-mismatch":
        reference = sha256(b"something else")
    before = snapshot(driver)
    response = client.put(
        f"/v2/app/manifests/{reference}", content=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == expected
    assert snapshot(driver) == before


def test_oversized_manifest_is_413_and_changes_nothing(stored):
    client, driver, _ = stored
    before = snapshot(driver)
    response = client.put(
        "/v2/app/manifests/v1",
        content=b"{" + b" " * (4 * 1024 * 1024) + b"}",
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 413
    assert snapshot(driver) == before


def test_blob_ranges(stored):
    client, _, _ = stored
    digest = push_blob(client, "app", b"0123456789")
    response = client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=2-5"})
    assert response.status_code == 206
    assert response.content == b"2345"
    assert response.headers["Content-Range"] == "bytes 2-5/10"
    assert client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=-3"}).content == b"789"
    assert client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=7-"}).content == b"789"


SPEC_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


def test_client_errors_use_only_the_specs_codes():
    """The spec closes the set of codes a 4xx JSON body may carry."""
    import arca.errors

    for value in vars(arca.errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, arca.errors.RegistryError)
            and hasattr(value, "code")
        ):
            error = value.__new__(value)
            if error.status < 500:
                assert value.code.name in SPEC_CODES, value


def test_unsupported_method_is_405_with_allow(client):
    response = client.post("/v2/app/manifests/v1")
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"


@pytest.mark.parametrize("header", ["bytes=-0", "bytes=5-", "bytes=10-20"])
def test_ranges_selecting_no_bytes_are_416(client, header):
    digest = push_blob(client, "app", b"01234")
    response = client.get(f"/v2/app/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */5"
