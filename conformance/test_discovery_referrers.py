"""Content discovery: the referrers API (end-12a, end-12b), new in distribution-spec 1.1."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conformance._client import Registry, describe, expect_status, media_type_of
from conformance._oci import (
    OCI_INDEX,
    Manifest,
    artifact_manifest,
    digest_of,
    image_index,
    image_manifest,
    random_bytes,
)

NO_REFERRERS_API = "no referrers API: GET /v2/<name>/referrers/<digest> is 404"

pytestmark = [
    pytest.mark.category("discovery"),
    pytest.mark.reference_xfail(NO_REFERRERS_API),
]

SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"


def referrers(
    registry: Registry, repo: str, subject: str, artifact_type: str | None = None
) -> tuple[list[httpx.Response], list[dict[str, Any]]]:
    """All pages, each checked to be an OCI image index served as one."""
    pages, descriptors = registry.referrers(repo, subject, artifact_type)
    for page in pages:
        assert media_type_of(page) == OCI_INDEX, f"Content-Type: {describe(page)}"
        document = page.json()
        assert document.get("schemaVersion") == 2, describe(page)
        assert document.get("mediaType") == OCI_INDEX, describe(page)
    digests = [descriptor.get("digest") for descriptor in descriptors]
    assert len(digests) == len(set(digests)), f"duplicate referrers: {digests}"
    return pages, descriptors


def expect_listed(
    descriptors: list[dict[str, Any]], manifest: Manifest, artifact_type: str | None
) -> None:
    """The referrer's descriptor: type, size, artifactType and every annotation."""
    found = [d for d in descriptors if d.get("digest") == manifest.digest]
    assert found, f"{manifest.digest} not among the referrers {descriptors}"
    descriptor = found[0]
    assert descriptor.get("mediaType") == manifest.media_type, descriptor
    assert descriptor.get("size") == manifest.size, descriptor
    if artifact_type is None:
        assert "artifactType" not in descriptor, descriptor
    else:
        assert descriptor.get("artifactType") == artifact_type, descriptor
    annotations = descriptor.get("annotations") or {}
    for key, value in manifest.annotations.items():
        assert annotations.get(key) == value, f"annotation {key} not carried: {descriptor}"


@pytest.mark.spec("end-12a")
def test_referrers_of_a_manifest_without_any_is_an_empty_index(
    registry: Registry, repo: str
) -> None:
    subject = image_manifest()
    registry.push_manifest(repo, subject, "v1")
    for digest in (subject.digest, digest_of(random_bytes(16))):
        pages, descriptors = referrers(registry, repo, digest)
        assert descriptors == [], descriptors
        assert pages[0].json()["manifests"] == []


@pytest.mark.spec("end-12a", "subject")
def test_referrers_pushed_after_the_subject(registry: Registry, repo: str) -> None:
    subject = image_manifest()
    registry.push_manifest(repo, subject, "v1")
    sbom = artifact_manifest(
        artifact_type=SBOM,
        subject=subject,
        annotations={"org.opencontainers.image.created": "2024-01-02T03:04:05Z", "x.y": "1"},
    )
    signature = artifact_manifest(
        artifact_type=SIGNATURE, subject=subject, annotations={"x.fingerprint": "abcd"}
    )
    for referrer in (sbom, signature):
        registry.push_manifest(repo, referrer)
    _, descriptors = referrers(registry, repo, subject.digest)
    assert len(descriptors) == 2, descriptors
    expect_listed(descriptors, sbom, SBOM)
    expect_listed(descriptors, signature, SIGNATURE)


@pytest.mark.spec("end-12a", "subject")
def test_referrers_pushed_before_the_subject(registry: Registry, repo: str) -> None:
    subject = image_manifest()
    sbom = artifact_manifest(artifact_type=SBOM, subject=subject, annotations={"x.y": "early"})
    registry.push_manifest(repo, sbom)
    _, early = referrers(registry, repo, subject.digest)
    expect_listed(early, sbom, SBOM)
    registry.push_manifest(repo, subject, "v1")
    _, descriptors = referrers(registry, repo, subject.digest)
    assert len(descriptors) == 1, descriptors
    expect_listed(descriptors, sbom, SBOM)


@pytest.mark.spec("end-12a", "artifactType")
def test_referrer_without_artifact_type_takes_the_config_media_type(
    registry: Registry, repo: str
) -> None:
    subject = image_manifest()
    registry.push_manifest(repo, subject, "v1")
    config_type = "application/vnd.example.config.v1+json"
    referrer = artifact_manifest(artifact_type=None, subject=subject, config_media_type=config_type)
    registry.push_manifest(repo, referrer)
    _, descriptors = referrers(registry, repo, subject.digest)
    expect_listed(descriptors, referrer, config_type)


@pytest.mark.spec("end-12a", "subject")
def test_index_referrer(registry: Registry, repo: str) -> None:
    """An index with a subject is listed; without artifactType its descriptor has none."""
    subject = image_manifest()
    registry.push_manifest(repo, subject, "v1")
    plain = image_index((image_manifest(),), subject=subject, annotations={"x.kind": "plain"})
    typed = image_index((image_manifest(),), subject=subject, artifact_type=SBOM)
    for index in (plain, typed):
        registry.push_manifest(repo, index)
    _, descriptors = referrers(registry, repo, subject.digest)
    assert len(descriptors) == 2, descriptors
    expect_listed(descriptors, plain, None)
    expect_listed(descriptors, typed, SBOM)


@pytest.mark.spec("end-12b", "OCI-Filters-Applied")
def test_referrers_artifact_type_filter(registry: Registry, repo: str) -> None:
    subject = image_manifest()
    registry.push_manifest(repo, subject, "v1")
    sboms = [artifact_manifest(artifact_type=SBOM, subject=subject) for _ in range(2)]
    signature = artifact_manifest(artifact_type=SIGNATURE, subject=subject)
    for referrer in (*sboms, signature):
        registry.push_manifest(repo, referrer)
    pages, descriptors = referrers(registry, repo, subject.digest, artifact_type=SBOM)
    applied = {
        name.strip()
        for value in pages[0].headers.get_list("OCI-Filters-Applied")
        for name in value.split(",")
    }
    if "artifactType" in applied:
        assert sorted(d["digest"] for d in descriptors) == sorted(m.digest for m in sboms)
        for sbom in sboms:
            expect_listed(descriptors, sbom, SBOM)
    else:  # filtering is a SHOULD: an unfiltered answer must then be complete
        assert len(descriptors) == 3, descriptors
        expect_listed(descriptors, signature, SIGNATURE)
    # A type nobody pushed: empty when filtered.
    pages, descriptors = referrers(registry, repo, subject.digest, artifact_type="x/none")
    if "artifactType" in pages[0].headers.get("OCI-Filters-Applied", ""):
        assert descriptors == []


@pytest.mark.spec("end-12a")
def test_referrers_are_scoped_to_the_repository(registry: Registry) -> None:
    one, other = registry.new_repo("referrers-one"), registry.new_repo("referrers-other")
    subject = image_manifest()
    for repo in (one, other):
        registry.push_manifest(repo, subject, "v1")
    referrer = artifact_manifest(artifact_type=SBOM, subject=subject)
    registry.push_manifest(one, referrer)
    _, listed = referrers(registry, one, subject.digest)
    expect_listed(listed, referrer, SBOM)
    _, elsewhere = referrers(registry, other, subject.digest)
    assert elsewhere == [], elsewhere


@pytest.mark.spec("end-12a")
def test_referrers_with_invalid_digest_is_400(registry: Registry, repo: str) -> None:
    registry.push_manifest(repo, image_manifest(), "v1")
    response = registry.get(f"/v2/{repo}/referrers/sha256:not-a-digest")
    expect_status(response, 400)
