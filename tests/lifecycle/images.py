"""Push images through the registry services (no HTTP): blobs, manifests, indexes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from arca.formats.digest import Digest
from arca.registry.registry import Registry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_blob(registry: Registry, name: str, data: bytes) -> Digest:
    digest = Digest.of(data)
    await registry.uploads.monolithic(name, digest, _once(data))
    return digest


def manifest_bytes(
    config: tuple[Digest, int], layers: list[tuple[Digest, int]], subject: Digest | None = None
) -> bytes:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": str(config[0]), "size": config[1]},
        "layers": [{"mediaType": LAYER, "digest": str(d), "size": s} for d, s in layers],
    }
    if subject is not None:
        document["subject"] = {"mediaType": MANIFEST, "digest": str(subject), "size": 2}
    return json.dumps(document).encode()


async def push_image(
    registry: Registry,
    name: str,
    reference: str,
    layers: list[bytes],
    *,
    config: bytes = b"{}",
    subject: Digest | None = None,
) -> tuple[Digest, list[Digest]]:
    """Push config + layers and a manifest at `reference`; (manifest, blob digests)."""
    blobs = [(await push_blob(registry, name, config), len(config))]
    for layer in layers:
        blobs.append((await push_blob(registry, name, layer), len(layer)))
    data = manifest_bytes(blobs[0], blobs[1:], subject)
    result = await registry.manifests.put(name, reference, data, MANIFEST)
    return result.digest, [digest for digest, _ in blobs]


async def push_index(
    registry: Registry, name: str, reference: str, children: list[tuple[Digest, int]]
) -> Digest:
    data = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [
                {"mediaType": MANIFEST, "digest": str(d), "size": s} for d, s in children
            ],
        }
    ).encode()
    return (await registry.manifests.put(name, reference, data, INDEX)).digest
