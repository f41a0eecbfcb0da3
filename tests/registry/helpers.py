"""Builders for service-level tests: blobs and manifests pushed through a Registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

from arca.formats.digest import Digest
from arca.registry.registry import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


async def chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def push_blob(registry: Registry, name: str, data: bytes) -> Digest:
    return await registry.uploads.monolithic(name, digest_of(data), chunks(data))


def manifest_bytes(layers: list[bytes], **annotations: str) -> bytes:
    """An OCI image manifest over an empty config and `layers` (which must be pushed)."""
    config = b"{}"
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": str(digest_of(config)), "size": 2},
        "layers": [
            {"mediaType": LAYER, "digest": str(digest_of(layer)), "size": len(layer)}
            for layer in layers
        ],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, sort_keys=True).encode()


async def push_manifest_blobs(registry: Registry, name: str, layers: list[bytes]) -> None:
    await push_blob(registry, name, b"{}")
    for layer in layers:
        await push_blob(registry, name, layer)
