"""Tiny OCI image layouts on disk, for skopeo to copy from (no network pulls)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_image(
    root: Path, tag: str, layer_sizes: tuple[int, ...] = (2048, 70_000, 300_000)
) -> str:
    """An image of random uncompressed layers; returns its manifest digest."""
    layers = [os.urandom(size) for size in layer_sizes]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **_blob(root, config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(root, x)}
                for x in layers
            ],
        }
    ).encode()
    described = _blob(root, manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **described,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return str(described["digest"])
