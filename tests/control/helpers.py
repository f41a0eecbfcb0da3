"""Pushing artifacts through the HTTP API, for the control-plane tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from arca.formats.artifact import ARTIFACT_MEDIA_TYPE, Artifact, ArtifactFile, encode_artifact
from arca.formats.digest import Digest
from tests.api.helpers import OCI_INDEX, OCI_MANIFEST, push_blob, sha256

BASE = datetime(2026, 1, 1, tzinfo=UTC)
__all__ = ["OCI_INDEX", "OCI_MANIFEST", "push_artifact", "push_blob", "push_oci", "sha256"]


def push_artifact(
    client: TestClient,
    name: str,
    reference: str,
    *,
    labels: dict[str, str] | None = None,
    minute: int | None = 0,
    files: dict[str, bytes] | None = None,
    metadata: Any = None,
) -> str:
    """A CBOR artifact created `minute` minutes after BASE (None: no created time)."""
    files = files or {"out.txt": f"{name} {reference}".encode()}
    for data in files.values():
        push_blob(client, name, data)
    artifact = Artifact(
        name=name,
        version=reference,
        created=None if minute is None else BASE + timedelta(minutes=minute),
        labels=labels or {},
        metadata=metadata,
        files=tuple(
            ArtifactFile(path, "text/plain", len(data), Digest.of(data), Digest.of(data, "blake3"))
            for path, data in files.items()
        ),
    )
    response = client.put(
        f"/v2/{name}/manifests/{reference}",
        content=encode_artifact(artifact),
        headers={"Content-Type": ARTIFACT_MEDIA_TYPE},
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def push_oci(
    client: TestClient, name: str, reference: str, annotations: dict[str, str], layer: bytes
) -> str:
    """An OCI manifest as oras would push it: labels only as annotations."""
    config = b"{}"
    push_blob(client, name, config)
    push_blob(client, name, layer)
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
                "digest": sha256(layer),
                "size": len(layer),
                "annotations": {"org.opencontainers.image.title": "report.txt"},
            }
        ],
        "annotations": annotations,
    }
    response = client.put(
        f"/v2/{name}/manifests/{reference}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def listing(client: TestClient, name: str, *labels: str, **params: Any) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/repositories/{name}/artifacts",
        params=[("label", label) for label in labels] + list(params.items()),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_code(response: Any) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code
