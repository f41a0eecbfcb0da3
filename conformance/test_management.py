"""Content management: deleting tags, manifests and blobs (end-9, end-10)."""

from __future__ import annotations

import httpx
import pytest

from conformance._client import Registry, describe, expect_error, expect_status
from conformance._oci import Blob, artifact_manifest, digest_of, image_manifest, random_bytes

pytestmark = pytest.mark.category("management")

DISABLED = (400, 405)  # what a registry with the deletion disabled MUST answer


def expect_deleted(response: httpx.Response, what: str) -> None:
    """202 Accepted; a registry MAY disable deletion (400/405), which skips the rest."""
    if response.status_code in DISABLED:
        pytest.skip(f"{what} deletion is disabled ({response.status_code}), as the spec allows")
    expect_status(response, 202)


def tags_of(registry: Registry, repo: str) -> list[str]:
    response = registry.tags(repo)
    if response.status_code == 404:  # the repository went with its last tag
        return []
    expect_status(response, 200)
    return list(response.json().get("tags") or [])


@pytest.mark.spec("end-9")
def test_delete_manifest_by_digest(registry: Registry, repo: str) -> None:
    keep, manifest = image_manifest(), image_manifest()
    registry.push_manifest(repo, keep, "keep")
    registry.push_manifest(repo, manifest, "a")
    expect_status(registry.put_manifest(repo, "b", manifest.body, manifest.media_type), 201)
    expect_deleted(registry.delete(registry.manifest_path(repo, manifest.digest)), "manifest")
    for reference in (manifest.digest, "a", "b"):
        expect_error(registry.get_manifest(repo, reference), [404], ["MANIFEST_UNKNOWN"])
        expect_status(registry.head_manifest(repo, reference), 404)
    remaining = tags_of(registry, repo)
    assert not {"a", "b"} & set(remaining), remaining
    registry.expect_manifest(repo, "keep", keep)


@pytest.mark.spec("end-9")
def test_delete_tag(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_manifest(repo, manifest, "a")
    expect_status(registry.put_manifest(repo, "b", manifest.body, manifest.media_type), 201)
    response = registry.delete(registry.manifest_path(repo, "a"))
    if response.status_code in DISABLED:
        registry.expect_manifest(repo, "a", manifest)  # disabled means nothing changed
    expect_deleted(response, "tag")
    expect_error(registry.get_manifest(repo, "a"), [404], ["MANIFEST_UNKNOWN"])
    registry.expect_manifest(repo, "b", manifest)
    registry.expect_manifest(repo, manifest.digest, manifest)
    assert tags_of(registry, repo) == ["b"]


@pytest.mark.spec("end-9")
def test_delete_unknown_manifest_is_404(registry: Registry, repo: str) -> None:
    registry.push_manifest(repo, image_manifest(), "v1")
    unknown = digest_of(random_bytes(16))
    response = registry.delete(registry.manifest_path(repo, unknown))
    expect_error(response, [404], ["MANIFEST_UNKNOWN"])
    elsewhere = registry.new_repo("never-pushed")
    response = registry.delete(registry.manifest_path(elsewhere, unknown))
    expect_error(response, [404], ["NAME_UNKNOWN", "MANIFEST_UNKNOWN"])


@pytest.mark.spec("end-10")
def test_delete_blob(registry: Registry, repo: str) -> None:
    blob, other = Blob(random_bytes(512)), Blob(random_bytes(512))
    registry.push_blobs(repo, (blob, other))
    expect_deleted(registry.delete(registry.blob_path(repo, blob.digest)), "blob")
    expect_status(registry.head_blob(repo, blob.digest), 404)
    expect_error(registry.get_blob(repo, blob.digest), [404], ["BLOB_UNKNOWN"])
    again = registry.delete(registry.blob_path(repo, blob.digest))
    expect_error(again, [404], ["BLOB_UNKNOWN"])
    expect_status(registry.head_blob(repo, other.digest), 200)


@pytest.mark.spec("end-10")
def test_delete_unknown_blob_is_404(registry: Registry, repo: str) -> None:
    registry.push_blob(repo, Blob(random_bytes(8)))
    response = registry.delete(registry.blob_path(repo, digest_of(random_bytes(16))))
    expect_error(response, [404], ["BLOB_UNKNOWN"])


@pytest.mark.spec("end-9", "end-10")
def test_delete_manifest_then_its_blobs(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_manifest(repo, manifest, "v1")
    expect_deleted(registry.delete(registry.manifest_path(repo, manifest.digest)), "manifest")
    expect_status(registry.get_manifest(repo, "v1"), 404)
    for blob in manifest.blobs:
        expect_deleted(registry.delete(registry.blob_path(repo, blob.digest)), "blob")
    for blob in manifest.blobs:
        expect_status(registry.head_blob(repo, blob.digest), 404)
    expect_status(registry.get_manifest(repo, manifest.digest), 404)


@pytest.mark.spec("end-9", "end-10")
def test_delete_blobs_then_their_manifest(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_manifest(repo, manifest, "v1")
    for blob in manifest.blobs:
        expect_deleted(registry.delete(registry.blob_path(repo, blob.digest)), "blob")
        expect_status(registry.head_blob(repo, blob.digest), 404)
    expect_deleted(registry.delete(registry.manifest_path(repo, manifest.digest)), "manifest")
    for reference in ("v1", manifest.digest):
        expect_status(registry.get_manifest(repo, reference), 404)


@pytest.mark.spec("end-9", "end-10", "end-7")
def test_deleted_content_can_be_pushed_again(registry: Registry, repo: str) -> None:
    manifest = image_manifest()
    registry.push_manifest(repo, manifest, "v1")
    expect_deleted(registry.delete(registry.manifest_path(repo, manifest.digest)), "manifest")
    for blob in manifest.blobs:
        expect_deleted(registry.delete(registry.blob_path(repo, blob.digest)), "blob")
    registry.push_manifest(repo, manifest, "v1")
    registry.expect_manifest(repo, "v1", manifest)
    for blob in manifest.blobs:
        pulled = registry.get_blob(repo, blob.digest)
        expect_status(pulled, 200)
        assert pulled.content == blob.data, describe(pulled)


@pytest.mark.spec("end-9", "end-12a")
@pytest.mark.reference_xfail("no referrers API: GET /v2/<name>/referrers/<digest> is 404")
def test_deleted_referrer_leaves_the_referrers_list(registry: Registry, repo: str) -> None:
    subject = image_manifest()
    registry.push_manifest(repo, subject, "v1")
    kept = artifact_manifest(artifact_type="application/vnd.example.a", subject=subject)
    dropped = artifact_manifest(artifact_type="application/vnd.example.b", subject=subject)
    for referrer in (kept, dropped):
        registry.push_manifest(repo, referrer)
    _, before = registry.referrers(repo, subject.digest)
    assert {d["digest"] for d in before} == {kept.digest, dropped.digest}, before
    expect_deleted(registry.delete(registry.manifest_path(repo, dropped.digest)), "manifest")
    _, after = registry.referrers(repo, subject.digest)
    assert [d["digest"] for d in after] == [kept.digest], after
