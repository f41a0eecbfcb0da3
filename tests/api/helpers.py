"""Small request builders shared by the HTTP tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.testclient import TestClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: TestClient, name: str, data: bytes) -> str:
    digest = sha256(data)
    response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", content=data)
    assert response.status_code == 201, response.text
    return digest


def descriptor(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def image_manifest(client: TestClient, name: str, layers: list[bytes], **fields: Any) -> bytes:
    """Push a config and layers, and return an OCI image manifest naming them."""
    config = b"{}"
    push_blob(client, name, config)
    for layer in layers:
        push_blob(client, name, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config, OCI_EMPTY),
        "layers": [descriptor(layer, "application/vnd.oci.image.layer.v1.tar") for layer in layers],
        **fields,
    }
    return json.dumps(manifest).encode()


def put_manifest(
    client: TestClient, name: str, reference: str, data: bytes, media_type: str = OCI_MANIFEST
) -> str:
    response = client.put(
        f"/v2/{name}/manifests/{reference}", content=data, headers={"Content-Type": media_type}
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def error_code(response: Any) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code
