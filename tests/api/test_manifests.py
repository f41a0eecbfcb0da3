from __future__ import annotations

import json

import pytest

from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    error_code,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_put_then_get_by_tag_and_digest_returns_bytes_as_sent(client):
    # Odd spacing on purpose: the registry must not re-serialise.
    data = image_manifest(client, "app", [b"layer"]).replace(b'", "', b'",  "')
    digest = put_manifest(client, "app", "v1", data)
    assert digest == sha256(data)
    for reference in ("v1", digest):
        response = client.get(f"/v2/app/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == digest


def test_head_answers_headers_without_body(client):
    data = image_manifest(client, "app", [b"layer"])
    put_manifest(client, "app", "v1", data)
    response = client.head("/v2/app/manifests/v1")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == str(len(data))


def test_docker_schema2_manifest(client):
    config, layer = b'{"architecture":"amd64"}', b"docker layer"
    push_blob(client, "app", config)
    push_blob(client, "app", layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(config, "application/vnd.docker.container.image.v1+json"),
        "layers": [descriptor(layer, "application/vnd.docker.image.rootfs.diff.tar.gzip")],
    }
    data = json.dumps(manifest).encode()
    put_manifest(client, "app", "docker", data, DOCKER_MANIFEST)
    assert client.get("/v2/app/manifests/docker").headers["Content-Type"] == DOCKER_MANIFEST


def test_index_needs_its_children(client):
    child = image_manifest(client, "app", [b"amd64 layer"])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(child, OCI_MANIFEST, platform={"architecture": "amd64", "os": "linux"})
        ],
    }
    data = json.dumps(index).encode()
    response = client.put(
        "/v2/app/manifests/multi", content=data, headers={"Content-Type": OCI_INDEX}
    )
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    put_manifest(client, "app", sha256(child), child)
    put_manifest(client, "app", "multi", data, OCI_INDEX)


def test_put_by_digest_with_tag_parameters(client):
    data = image_manifest(client, "app", [b"layer"])
    response = client.put(
        f"/v2/app/manifests/{sha256(data)}?tag=one&tag=two",
        content=data,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201
    assert response.headers["OCI-Tag"] == "one,two"
    assert client.get("/v2/app/tags/list").json()["tags"] == ["one", "two"]


def test_manifest_of_4_mib_is_accepted_and_larger_is_413(client):
    base = json.loads(image_manifest(client, "app", [b"layer"]))

    def padded(size: int) -> bytes:
        base["annotations"] = {"pad": ""}
        room = size - len(json.dumps(base).encode())
        base["annotations"] = {"pad": "x" * room}
        data = json.dumps(base).encode()
        assert len(data) == size
        return data

    put_manifest(client, "app", "big", padded(4 * 1024 * 1024))
    response = client.put(
        "/v2/app/manifests/huge",
        content=padded(4 * 1024 * 1024 + 1),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 413
    assert error_code(response) == "SIZE_INVALID"


def test_delete_by_digest_removes_manifest_and_its_tags(client):
    data = image_manifest(client, "app", [b"layer"])
    digest = put_manifest(client, "app", "v1", data)
    assert client.delete(f"/v2/app/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/app/manifests/{digest}").status_code == 404
    assert client.get("/v2/app/manifests/v1").status_code == 404
    assert client.get("/v2/app/tags/list").json()["tags"] == []


def test_delete_by_tag_keeps_manifest(client):
    data = image_manifest(client, "app", [b"layer"])
    digest = put_manifest(client, "app", "v1", data)
    assert client.delete("/v2/app/manifests/v1").status_code == 202
    assert client.get("/v2/app/manifests/v1").status_code == 404
    assert client.get(f"/v2/app/manifests/{digest}").status_code == 200


def test_tag_moves_to_new_manifest(client):
    first = put_manifest(client, "app", "latest", image_manifest(client, "app", [b"one"]))
    second = put_manifest(client, "app", "latest", image_manifest(client, "app", [b"two"]))
    assert first != second
    assert client.head("/v2/app/manifests/latest").headers["Docker-Content-Digest"] == second
    assert client.get(f"/v2/app/manifests/{first}").status_code == 200


def test_tags_list_is_lexical_and_paginates_with_link(client):
    data = image_manifest(client, "app", [b"layer"])
    names = ["b", "a", "C", "c10", "c2", "1.0"]
    for tag in names:
        put_manifest(client, "app", tag, data)
    assert client.get("/v2/app/tags/list").json()["tags"] == sorted(names)
    page = client.get("/v2/app/tags/list?n=2")
    assert page.json()["tags"] == ["1.0", "C"]
    assert page.headers["Link"] == '</v2/app/tags/list?n=2&last=C>; rel="next"'
    rest = client.get("/v2/app/tags/list?n=10&last=C")
    assert rest.json()["tags"] == ["a", "b", "c10", "c2"]
    assert "Link" not in rest.headers


def test_tags_of_unknown_repository_is_name_unknown(client):
    response = client.get("/v2/nothing/tags/list")
    assert response.status_code == 404
    assert error_code(response) == "NAME_UNKNOWN"


def test_catalog_lists_nested_names_in_order(client):
    for name in ("b", "a/b", "a-b", "a"):
        push_blob(client, name, b"x")
    assert client.get("/v2/_catalog").json()["repositories"] == ["a", "a-b", "a/b", "b"]
    page = client.get("/v2/_catalog?n=2")
    assert page.json()["repositories"] == ["a", "a-b"]
    assert page.headers["Link"] == '</v2/_catalog?n=2&last=a-b>; rel="next"'
    assert client.get("/v2/_catalog?last=a-b").json()["repositories"] == ["a/b", "b"]


def _referrer(client, subject: bytes, artifact_type: str, note: str) -> bytes:
    return image_manifest(
        client,
        "app",
        [note.encode()],
        artifactType=artifact_type,
        subject=descriptor(subject, OCI_MANIFEST),
        annotations={"note": note},
    )


@pytest.mark.parametrize("subject_first", [True, False])
def test_referrers_list_and_filter(client, subject_first):
    subject = image_manifest(client, "app", [b"image"])
    if subject_first:
        put_manifest(client, "app", "v1", subject)
    sbom = _referrer(client, subject, "application/spdx+json", "sbom")
    sig = _referrer(client, subject, "application/vnd.dev.sigstore", "sig")
    for data in (sbom, sig):
        response = client.put(
            f"/v2/app/manifests/{sha256(data)}",
            content=data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert response.status_code == 201
        assert response.headers["OCI-Subject"] == sha256(subject)
    if not subject_first:
        put_manifest(client, "app", "v1", subject)
    listing = client.get(f"/v2/app/referrers/{sha256(subject)}")
    assert listing.headers["Content-Type"] == OCI_INDEX
    found = {d["digest"]: d for d in listing.json()["manifests"]}
    assert set(found) == {sha256(sbom), sha256(sig)}
    assert found[sha256(sbom)]["artifactType"] == "application/spdx+json"
    assert found[sha256(sbom)]["annotations"] == {"note": "sbom"}
    filtered = client.get(
        f"/v2/app/referrers/{sha256(subject)}", params={"artifactType": "application/spdx+json"}
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sha256(sbom)]


def test_referrers_of_unknown_subject_is_an_empty_index(client):
    response = client.get(f"/v2/app/referrers/{sha256(b'nothing')}")
    assert response.status_code == 200
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_deleting_a_referrer_removes_it_from_the_list(client):
    subject = image_manifest(client, "app", [b"image"])
    put_manifest(client, "app", "v1", subject)
    sbom = _referrer(client, subject, "application/spdx+json", "sbom")
    digest = put_manifest(client, "app", sha256(sbom), sbom)
    client.delete(f"/v2/app/manifests/{digest}")
    assert client.get(f"/v2/app/referrers/{sha256(subject)}").json()["manifests"] == []


def test_referrers_paginate_with_link(client_factory):
    from arca.config import LimitSettings, Settings

    client = client_factory(settings=Settings(limits=LimitSettings(referrers_page_size=2)))
    subject = image_manifest(client, "app", [b"image"])
    pushed = {
        put_manifest(client, "app", f"r{i}", _referrer(client, subject, "t/x", str(i)))
        for i in range(5)
    }
    seen: list[str] = []
    url: str | None = f"/v2/app/referrers/{sha256(subject)}"
    while url:
        response = client.get(url)
        seen += [d["digest"] for d in response.json()["manifests"]]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert sorted(seen) == sorted(pushed)


def test_referrers_with_n_zero_is_an_empty_page(client):
    subject = image_manifest(client, "app", [b"image"])
    put_manifest(client, "app", "v1", subject)
    put_manifest(client, "app", "sbom", _referrer(client, subject, "application/spdx+json", "sbom"))
    response = client.get(f"/v2/app/referrers/{sha256(subject)}?n=0")
    assert response.json()["manifests"] == []
    assert "Link" not in response.headers


def test_the_same_bytes_again_under_another_content_type_are_checked_again(client):
    """Validated manifests are remembered by digest *and* Content-Type: a re-push of
    accepted bytes with a Content-Type that contradicts them is still refused."""
    data = image_manifest(client, "app", [b"layer"])
    put_manifest(client, "app", "v1", data)
    assert put_manifest(client, "app", "v2", data) == sha256(data)  # the same again: fine
    response = client.put(
        "/v2/app/manifests/v3", content=data, headers={"Content-Type": DOCKER_MANIFEST}
    )
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_INVALID"
    assert client.get("/v2/app/manifests/v3").status_code == 404
