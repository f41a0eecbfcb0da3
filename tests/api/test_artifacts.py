"""CBOR artifacts through the HTTP API: PUT the document, read either view back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import blake3
import pytest

from arca.formats.artifact import (
    ARTIFACT_MEDIA_TYPE,
    Artifact,
    ArtifactFile,
    decode_artifact,
    encode_artifact,
    to_oci_manifest,
)
from arca.formats.digest import Digest
from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import OCI_MANIFEST, error_code, push_blob, sha256

FILES = {"report.html": b"<html>ok</html>", "data/results.json": b'{"passed": 12}'}


def artifact_file(
    path: str, data: bytes, media_type: str = "application/octet-stream"
) -> ArtifactFile:
    return ArtifactFile(
        path=path,
        media_type=media_type,
        size=len(data),
        sha256=Digest.of(data),
        blake3=Digest.of(data, "blake3"),
    )


def make_artifact(**overrides) -> Artifact:
    fields: dict[str, Any] = {
        "name": "nightly-report",
        "version": "2026.11.22",
        "created": datetime(2026, 11, 22, 3, 0, tzinfo=UTC),
        "labels": {"run_id": "r-1042", "template_id": "at_risk", "status": "pass"},
        "metadata": {"duration_s": 12.5, "tables": ["a", "b"]},
        "files": tuple(artifact_file(p, d) for p, d in FILES.items()),
    }
    fields.update(overrides)
    return Artifact(**fields)


def push_files(client, name="reports") -> None:
    for data in FILES.values():
        push_blob(client, name, data)


def put_document(client, document: bytes, reference="v1", name="reports"):
    return client.put(
        f"/v2/{name}/manifests/{reference}",
        content=document,
        headers={"Content-Type": ARTIFACT_MEDIA_TYPE},
    )


def test_put_cbor_document_stores_generated_oci_manifest(client):
    push_files(client)
    artifact = make_artifact()
    document = encode_artifact(artifact)
    response = put_document(client, document)
    assert response.status_code == 201, response.text
    manifest = to_oci_manifest(artifact, document)
    assert response.headers["Docker-Content-Digest"] == sha256(manifest)
    pulled = client.get("/v2/reports/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.content == manifest
    assert pulled.headers["Content-Type"] == OCI_MANIFEST
    parsed = json.loads(pulled.content)
    assert parsed["artifactType"] == ARTIFACT_MEDIA_TYPE
    assert parsed["annotations"]["dev.arca.label.run_id"] == "r-1042"
    for layer in parsed["layers"]:
        title = layer["annotations"]["org.opencontainers.image.title"]
        assert client.get(f"/v2/reports/blobs/{layer['digest']}").content == FILES[title]


def test_cbor_view_round_trips_byte_for_byte(client):
    push_files(client)
    document = encode_artifact(make_artifact())
    digest = put_document(client, document).headers["Docker-Content-Digest"]
    for reference in ("v1", digest):
        view = client.get(
            f"/v2/reports/manifests/{reference}", headers={"Accept": ARTIFACT_MEDIA_TYPE}
        )
        assert view.status_code == 200
        assert view.content == document
        assert view.headers["Content-Type"] == ARTIFACT_MEDIA_TYPE
        assert view.headers["Docker-Content-Digest"] == sha256(document)
        assert view.headers["Arca-Manifest-Digest"] == digest
    head = client.head("/v2/reports/manifests/v1", headers={"Accept": ARTIFACT_MEDIA_TYPE})
    assert head.headers["Content-Length"] == str(len(document))
    assert head.content == b""


def test_same_document_gives_same_digest_on_every_replica(client_factory):
    driver = MemoryDriver()
    first, second = client_factory(driver), client_factory(MemoryDriver())
    document = encode_artifact(make_artifact())
    digests = set()
    for client in (first, first, second):
        push_files(client)
        digests.add(put_document(client, document).headers["Docker-Content-Digest"])
    assert len(digests) == 1


def test_accept_prefers_json_when_listed_first(client):
    push_files(client)
    put_document(client, encode_artifact(make_artifact()))
    both = f"{OCI_MANIFEST}, {ARTIFACT_MEDIA_TYPE}"
    assert (
        client.get("/v2/reports/manifests/v1", headers={"Accept": both}).headers["Content-Type"]
        == OCI_MANIFEST
    )
    weighted = f"{OCI_MANIFEST};q=0.5, {ARTIFACT_MEDIA_TYPE}"
    assert (
        client.get("/v2/reports/manifests/v1", headers={"Accept": weighted}).headers["Content-Type"]
        == ARTIFACT_MEDIA_TYPE
    )


def test_derived_view_of_a_foreign_manifest_has_both_digests(client):
    """A manifest pushed by another tool (oras-style) gets a CBOR view from blob metadata."""
    config = b"{}"
    for data in (config, *FILES.values()):
        push_blob(client, "reports", data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.report",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256(config),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "text/plain",
                "digest": sha256(data),
                "size": len(data),
                "annotations": {"org.opencontainers.image.title": path},
            }
            for path, data in FILES.items()
        ],
        "annotations": {"dev.arca.label.status": "fail"},
    }
    client.put(
        "/v2/reports/manifests/foreign",
        content=json.dumps(manifest),
        headers={"Content-Type": OCI_MANIFEST},
    )
    view = client.get("/v2/reports/manifests/foreign", headers={"Accept": ARTIFACT_MEDIA_TYPE})
    assert view.status_code == 200, view.text
    artifact = decode_artifact(view.content)
    assert artifact.labels == {"status": "fail"}
    assert artifact.version == "foreign"
    for file in artifact.files:
        data = FILES[file.path]
        assert str(file.sha256) == sha256(data)
        assert str(file.blake3) == "blake3:" + blake3.blake3(data).hexdigest()


def test_blob_head_exposes_blake3(client):
    digest = push_blob(client, "reports", b"some bytes")
    head = client.head(f"/v2/reports/blobs/{digest}")
    assert (
        head.headers["Arca-Content-Blake3"] == "blake3:" + blake3.blake3(b"some bytes").hexdigest()
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-file", "MANIFEST_BLOB_UNKNOWN"),
        ("wrong-size", "MANIFEST_INVALID"),
        ("wrong-blake3", "MANIFEST_INVALID"),
        ("not-canonical", "MANIFEST_INVALID"),
        ("trailing-bytes", "MANIFEST_INVALID"),
    ],
)
def test_bad_documents_are_rejected(client, case, expected):
    push_files(client)
    data = FILES["report.html"]
    if case == "missing-file":
        document = encode_artifact(make_artifact(files=(artifact_file("absent.bin", b"absent"),)))
    elif case == "wrong-size":
        wrong = ArtifactFile(
            "report.html", "text/html", len(data) + 1, Digest.of(data), Digest.of(data, "blake3")
        )
        document = encode_artifact(make_artifact(files=(wrong,)))
    elif case == "wrong-blake3":
        wrong = ArtifactFile(
            "report.html", "text/html", len(data), Digest.of(data), Digest.of(b"x", "blake3")
        )
        document = encode_artifact(make_artifact(files=(wrong,)))
    elif case == "not-canonical":
        document = bytes([0xBF]) + encode_artifact(make_artifact())[1:]  # indefinite-length map
    else:
        document = encode_artifact(make_artifact()) + b"\x00"
    response = put_document(client, document)
    assert response.status_code == 400
    assert error_code(response) == expected
    assert client.get("/v2/reports/manifests/v1").status_code == 404


def test_invalid_cbor_names_the_rule(client):
    response = put_document(client, bytes([0xBF]) + encode_artifact(make_artifact())[1:])
    assert "RFC 8949" in response.json()["errors"][0]["message"]


def _manifest_with_config(client, config: bytes, config_type: str, layers: list[bytes]) -> bytes:
    push_blob(client, "reports", config)
    for layer in layers:
        push_blob(client, "reports", layer)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": "text/plain",
                    "digest": sha256(x),
                    "size": len(x),
                    "annotations": {"org.opencontainers.image.title": f"f{i}.txt"},
                }
                for i, x in enumerate(layers)
            ],
        }
    ).encode()


def test_an_oversized_config_claiming_to_be_an_arca_document_is_not_read_as_one(client_factory):
    from arca.config import LimitSettings, Settings

    client = client_factory(settings=Settings(limits=LimitSettings(manifest_max_bytes=1024)))
    manifest = _manifest_with_config(client, b"x" * 2048, ARTIFACT_MEDIA_TYPE, [b"file"])
    client.put(
        "/v2/reports/manifests/big", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    view = client.get("/v2/reports/manifests/big", headers={"Accept": ARTIFACT_MEDIA_TYPE})
    assert view.status_code == 200  # derived from the manifest, the big blob left unread
    assert [f.path for f in decode_artifact(view.content).files] == ["f0.txt"]


def test_a_manifest_without_files_has_no_artifact_view(client):
    manifest = _manifest_with_config(client, b"{}", "application/vnd.oci.empty.v1+json", [])
    client.put(
        "/v2/reports/manifests/empty", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    view = client.get("/v2/reports/manifests/empty", headers={"Accept": ARTIFACT_MEDIA_TYPE})
    assert view.status_code == 404
    assert error_code(view) == "MANIFEST_UNKNOWN"
    assert client.get("/v2/reports/manifests/empty").status_code == 200


def test_a_manifest_with_a_foreign_layer_has_no_artifact_view(client):
    """A URL-only (non-distributable) layer is not stored here, so no view can name it."""
    local = b"local file"
    foreign = b"a base layer kept elsewhere"
    config = b"{}"
    push_blob(client, "reports", config)
    push_blob(client, "reports", local)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar",
                    "digest": sha256(foreign),
                    "size": len(foreign),
                    "urls": ["https://example.invalid/layer.tar"],
                    "annotations": {"org.opencontainers.image.title": "base.tar"},
                },
                {
                    "mediaType": "text/plain",
                    "digest": sha256(local),
                    "size": len(local),
                    "annotations": {"org.opencontainers.image.title": "local.txt"},
                },
            ],
        }
    ).encode()
    stored = client.put(
        "/v2/reports/manifests/foreign", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert stored.status_code == 201, stored.text
    view = client.get("/v2/reports/manifests/foreign", headers={"Accept": ARTIFACT_MEDIA_TYPE})
    assert view.status_code == 404, view.text
    assert error_code(view) == "MANIFEST_UNKNOWN"
    message = view.json()["errors"][0]["message"]
    assert "has no artifact view" in message
    assert sha256(foreign) in message
    assert client.get("/v2/reports/manifests/foreign").content == manifest
