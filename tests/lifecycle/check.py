"""What a user would check after a collection: every tag pulls back intact."""

from __future__ import annotations

import json

from arca.formats.digest import Digest
from arca.registry.registry import Registry
from arca.storage import layout


async def pull_all(registry: Registry, name: str, digest: Digest) -> list[Digest]:
    """Every blob of a manifest (and its children), read back and re-hashed."""
    stored = await registry.manifests.get(name, str(digest))
    assert Digest.of(stored.data) == digest
    document = json.loads(stored.data)
    found = []
    for child in document.get("manifests", []):
        found += await pull_all(registry, name, Digest.parse(child["digest"]))
    descriptors = [document["config"], *document["layers"]] if "config" in document else []
    for descriptor in descriptors:
        blob = Digest.parse(descriptor["digest"])
        await registry.blobs.stat(name, blob)
        data = b"".join([chunk async for chunk in registry.blobs.read(blob)])
        assert Digest.of(data) == blob, f"{blob} in {name} reads back wrong"
        found.append(blob)
    return found


async def every_tag_pulls(registry: Registry) -> int:
    count = 0
    async for name in registry.catalog.repositories():
        async for _, digest in registry.tags.all(name):
            await pull_all(registry, name, digest)
            count += 1
    return count


async def no_collector_leftovers(registry: Registry) -> None:
    assert not await registry.driver.exists(layout.gc_sweeping())
    assert [info.path async for info in registry.driver.walk(layout.gc_tombstones())] == []
