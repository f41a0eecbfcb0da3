"""Small registry content for end-to-end tests, pushed over real HTTP."""

from __future__ import annotations

import hashlib
import json

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(client: httpx.Client, name: str, layer: bytes) -> bytes:
    """Push an empty config and `layer`; return a manifest naming them (not pushed)."""
    for blob in (b"{}", layer):
        response = client.post(f"/v2/{name}/blobs/uploads/?digest={sha256(blob)}", content=blob)
        assert response.status_code == 201, response.text
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2}
    layers = [
        {"mediaType": "application/octet-stream", "digest": sha256(layer), "size": len(layer)}
    ]
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    return json.dumps(manifest).encode()
