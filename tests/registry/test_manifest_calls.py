"""What a manifest PUT asks storage: no read whose answer the push already has."""

from __future__ import annotations

import asyncio
from collections import Counter

from arca.config import Settings
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.doubles import WrappingDriver
from tests.registry.helpers import OCI_MANIFEST, manifest_bytes, push_manifest_blobs


class _Counting(WrappingDriver):
    def __init__(self, inner: MemoryDriver) -> None:
        super().__init__(inner)
        self.calls: Counter[tuple[str, str]] = Counter()

    def _seen(self, method: str, path: str) -> None:
        self.calls[(method, path)] += 1


def test_a_new_manifest_reads_its_revision_once_and_a_repush_writes_no_content() -> None:
    memory = MemoryDriver()
    driver = _Counting(memory)
    registry = Registry(driver, Settings())
    body = manifest_bytes([b"layer"], n="1")

    async def scenario() -> None:
        await push_manifest_blobs(registry, "repo", [b"layer"])
        result = await registry.manifests.put("repo", "v1", body, OCI_MANIFEST)
        link = layout.revision_link("repo", result.digest)
        # Content new to storage: no revision to look for first; the one read is the
        # check, after the tags, that no delete removed it meanwhile.
        assert driver.calls[("get", link)] == 1
        generation = (await registry.manifests.revision("repo", "v1")).generation
        driver.calls.clear()
        again = await registry.manifests.put("repo", "v2", body, OCI_MANIFEST)
        assert again.digest == result.digest
        assert driver.calls[("get", link)] == 2  # read first: adopted, not written
        # Its content and metadata were stored already: looked at, not written again.
        assert driver.calls[("put", layout.blob_data(result.digest))] == 0
        assert driver.calls[("put", layout.blob_meta(result.digest))] == 0
        assert driver.calls[("exists", layout.blob_meta(result.digest))] == 1
        assert (await registry.manifests.revision("repo", "v2")).generation == generation
        assert (await registry.manifests.revision("repo", "v1")).generation == generation

    asyncio.run(scenario())


def test_content_gone_from_under_its_revision_is_stored_again_and_the_revision_kept() -> None:
    memory = MemoryDriver()
    registry = Registry(memory, Settings())
    body = manifest_bytes([b"layer"], n="2")

    async def scenario() -> None:
        await push_manifest_blobs(registry, "repo", [b"layer"])
        result = await registry.manifests.put("repo", "v1", body, OCI_MANIFEST)
        generation = (await registry.manifests.revision("repo", "v1")).generation
        await memory.delete(layout.blob_data(result.digest))  # e.g. restored badly
        await registry.manifests.put("repo", "v2", body, OCI_MANIFEST)
        for tag in ("v1", "v2"):  # the create-only write found the revision: adopted
            assert (await registry.manifests.revision("repo", tag)).generation == generation
            assert (await registry.manifests.get("repo", tag)).data == body

    asyncio.run(scenario())
