"""Push, manifests: OCI and Docker types, indexes, tags, sizes, validation (end-7)."""

from __future__ import annotations

import json

import httpx
import pytest

from conformance._client import (
    Registry,
    describe,
    expect_digest_header,
    expect_error,
    expect_status,
    resolve_location,
    with_query,
)
from conformance._oci import (
    ACCEPT_ALL_MANIFESTS,
    OCI_MANIFEST,
    Blob,
    Manifest,
    artifact_manifest,
    digest_of,
    image_index,
    image_manifest,
    padded_manifest,
    random_bytes,
)

pytestmark = pytest.mark.category("push")


def expect_created(registry: Registry, response: httpx.Response, manifest: Manifest) -> None:
    """201 with a pullable Location and, if sent, the manifest's own digest."""
    expect_status(response, 201)
    digest_header = response.headers.get("Docker-Content-Digest")
    if digest_header is not None:
        assert digest_header == manifest.digest, f"Docker-Content-Digest {digest_header}"
    pulled = registry.get(resolve_location(response), headers={"Accept": ACCEPT_ALL_MANIFESTS})
    expect_status(pulled, 200)
    assert pulled.content == manifest.body, (
        f"manifest Location serves other bytes: {describe(pulled)}"
    )


@pytest.mark.spec("end-7")
def test_push_oci_manifest_by_tag(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_blobs(repo, manifest.blobs)
    response = registry.put_manifest(repo, "v1", manifest.body, manifest.media_type)
    expect_created(registry, response, manifest)
    registry.expect_manifest(repo, "v1", manifest)
    registry.expect_manifest(repo, manifest.digest, manifest)


@pytest.mark.spec("end-7")
def test_push_oci_manifest_by_digest(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_blobs(repo, manifest.blobs)
    response = registry.put_manifest(repo, manifest.digest, manifest.body, manifest.media_type)
    expect_created(registry, response, manifest)
    registry.expect_manifest(repo, manifest.digest, manifest)


@pytest.mark.spec("end-7")
def test_push_docker_schema2_manifest(registry: Registry, repo: str) -> None:
    manifest = image_manifest(docker=True)
    registry.push_blobs(repo, manifest.blobs)
    response = registry.put_manifest(repo, "docker", manifest.body, manifest.media_type)
    expect_created(registry, response, manifest)
    registry.expect_manifest(repo, "docker", manifest)


@pytest.mark.spec("end-7")
def test_push_image_index_and_docker_list(registry: Registry, repo: str) -> None:
    for docker in (False, True):
        children = tuple(image_manifest(docker=docker, architecture=a) for a in ("amd64", "arm64"))
        index = image_index(children, docker=docker)
        for child in children:
            registry.push_manifest(repo, child)
        response = registry.put_manifest(
            repo, f"index-{docker}".lower(), index.body, index.media_type
        )
        expect_created(registry, response, index)
        registry.expect_manifest(repo, index.digest, index)


@pytest.mark.spec("end-7", "end-3")
def test_manifest_is_stored_byte_for_byte(registry: Registry, repo: str) -> None:
    """Unusual but valid JSON (spacing, key order, escapes) comes back unchanged."""
    base = image_manifest()
    document = base.document
    text = (
        '{\n   "schemaVersion" : 2,\n\t"layers": '
        + json.dumps(document["layers"], indent=7)
        + ',  "config":'
        + json.dumps(document["config"])
        + ', "mediaType": "application/vnd.oci.image.manifest.v1+json" ,'
        + ' "annotations": {"z": "\\u00e9t\\u00e9", "a": "caf\u00e9"}\n}\n'
    )
    manifest = Manifest(text.encode(), OCI_MANIFEST, base.blobs)
    registry.push_manifest(repo, manifest, "odd")
    registry.expect_manifest(repo, "odd", manifest)
    registry.expect_manifest(repo, manifest.digest, manifest)


@pytest.mark.spec("end-7", "end-3")
def test_push_to_existing_tag_moves_it(registry: Registry, repo: str) -> None:
    first, second = image_manifest(), image_manifest()
    registry.push_manifest(repo, first, "moving")
    registry.push_manifest(repo, second, "moving")
    registry.expect_manifest(repo, "moving", second)
    registry.expect_manifest(repo, first.digest, first)


@pytest.mark.spec("end-7")
def test_push_same_manifest_twice(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_manifest(repo, manifest, "twice")
    again = registry.put_manifest(repo, "twice", manifest.body, manifest.media_type)
    expect_created(registry, again, manifest)


@pytest.mark.spec("end-7", "tag query parameters")
def test_push_by_digest_with_tag_query(registry: Registry, repo: str) -> None:
    """PUT by digest with ?tag=: every tag echoed in OCI-Tag MUST then resolve.

    A registry that does not support the parameter ignores it (the client then
    pushes the tags itself), which the spec allows.
    """
    manifest = image_manifest()
    registry.push_blobs(repo, manifest.blobs)
    url = with_query(registry.manifest_path(repo, manifest.digest), tag="t1")
    url = with_query(url, tag="t2")
    response = registry.request(
        "PUT", url, content=manifest.body, headers={"Content-Type": manifest.media_type}
    )
    expect_created(registry, response, manifest)
    echoed = [
        tag.strip()
        for value in response.headers.get_list("OCI-Tag")
        for tag in value.split(",")
        if tag.strip()
    ]
    assert set(echoed) <= {"t1", "t2"}, f"OCI-Tag names tags that were not asked for: {echoed}"
    for tag in echoed:
        registry.expect_manifest(repo, tag, manifest)


@pytest.mark.spec("end-7", "manifest size")
def test_push_4mib_manifest_is_accepted(registry: Registry, repo: str) -> None:
    """Registries SHOULD accept manifests of at least 4 MiB."""
    manifest = padded_manifest(4 * 1024 * 1024)
    registry.push_blobs(repo, manifest.blobs)
    response = registry.put_manifest(repo, "big", manifest.body, manifest.media_type)
    expect_created(registry, response, manifest)
    registry.expect_manifest(repo, "big", manifest)


@pytest.mark.spec("end-7", "manifest size")
@pytest.mark.reference_xfail(
    "an oversized manifest is refused with 400 MANIFEST_INVALID, not 413 Payload Too Large"
)
def test_push_oversized_manifest_is_413(registry: Registry, repo: str) -> None:
    manifest = padded_manifest(registry.max_manifest_size + 1)
    registry.push_blobs(repo, manifest.blobs)
    response = registry.put_manifest(repo, "too-big", manifest.body, manifest.media_type)
    expect_error(response, [413], [])
    expect_status(registry.get_manifest(repo, "too-big"), 404)


@pytest.mark.spec("end-7", "MANIFEST_BLOB_UNKNOWN")
def test_push_manifest_with_missing_blob(registry: Registry, repo: str) -> None:
    """A registry MAY refuse it; if it does, the code is MANIFEST_BLOB_UNKNOWN."""
    manifest = image_manifest()
    registry.push_blobs(repo, manifest.blobs[:-1])  # one layer never arrives
    response = registry.put_manifest(repo, "incomplete", manifest.body, manifest.media_type)
    if response.status_code == 201:  # accepted: it must then be served as pushed
        registry.expect_manifest(repo, "incomplete", manifest)
        return
    expect_error(response, [400, 404], ["MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"])
    expect_status(registry.get_manifest(repo, "incomplete"), 404)


@pytest.mark.spec("end-7", "MANIFEST_BLOB_UNKNOWN")
def test_push_index_with_missing_child(registry: Registry, repo: str) -> None:
    present, absent = image_manifest(), image_manifest()
    registry.push_manifest(repo, present)
    registry.push_blobs(repo, absent.blobs)  # its blobs, but never the manifest
    index = image_index((present, absent))
    response = registry.put_manifest(repo, "incomplete", index.body, index.media_type)
    if response.status_code == 201:
        registry.expect_manifest(repo, "incomplete", index)
        return
    expect_error(response, [400, 404], ["MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"])
    expect_status(registry.get_manifest(repo, "incomplete"), 404)


@pytest.mark.spec("end-7", "MANIFEST_INVALID")
def test_push_invalid_manifest_is_rejected(registry: Registry, repo: str) -> None:
    registry.push_blob(repo, Blob(random_bytes(8)))
    for body in (b"this is not json", b'{"schemaVersion": 2, "mediaType": 17'):
        response = registry.put_manifest(repo, "broken", body, OCI_MANIFEST)
        expect_error(response, [400], ["MANIFEST_INVALID"])
    expect_status(registry.get_manifest(repo, "broken"), 404)


@pytest.mark.spec("end-7")
def test_push_with_digest_reference_that_does_not_match(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_blobs(repo, manifest.blobs)
    wrong = digest_of(random_bytes(16))
    response = registry.put_manifest(repo, wrong, manifest.body, manifest.media_type)
    expect_error(response, [400], ["DIGEST_INVALID", "MANIFEST_INVALID"])
    expect_status(registry.get_manifest(repo, wrong), 404)


@pytest.mark.spec("end-7", "subject")
def test_push_manifest_whose_subject_does_not_exist(registry: Registry, repo: str) -> None:
    """A registry MUST accept a subject that is not (yet) in the repository."""
    absent = image_manifest()
    referrer = artifact_manifest(artifact_type="application/vnd.example.sbom", subject=absent)
    registry.push_blobs(repo, referrer.blobs)
    response = registry.put_manifest(repo, referrer.digest, referrer.body, referrer.media_type)
    expect_created(registry, response, referrer)
    expect_digest_header(response, referrer.body)


@pytest.mark.spec("end-7", "OCI-Subject")
@pytest.mark.reference_xfail("no referrers API, so no OCI-Subject header")
def test_push_manifest_with_subject_answers_oci_subject(registry: Registry, repo: str) -> None:
    subject = image_manifest()
    registry.push_manifest(repo, subject, "subject")
    referrer = artifact_manifest(artifact_type="application/vnd.example.sig", subject=subject)
    response = registry.push_manifest(repo, referrer)
    assert response.headers.get("OCI-Subject") == subject.digest, describe(response)
