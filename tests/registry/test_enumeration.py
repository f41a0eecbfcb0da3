"""The services enumerate what they own: what GC, scrub and rebuilds walk."""

from __future__ import annotations

import pytest

from arca.config import Settings
from arca.formats.digest import Digest, MultiHasher
from arca.registry.registry import Registry
from arca.storage.drivers.memory import MemoryDriver
from tests.lifecycle.images import push_image

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_services_enumerate_repositories_tags_revisions_links_referrers_sessions() -> None:
    registry = Registry(MemoryDriver(), Settings())
    app, app_blobs = await push_image(registry, "team/app", "v1", [b"layer-a", b"layer-b"])
    tool, _ = await push_image(registry, "team/app/tool", "latest", [b"layer-c"])
    signature, _ = await push_image(registry, "team/app", "sig", [b"sig"], subject=app)
    session = await registry.uploads.start("team/app")

    assert sorted([name async for name in registry.catalog.repositories()]) == [
        "team/app",
        "team/app/tool",
    ]
    assert [pair async for pair in registry.tags.all("team/app")] == [
        ("sig", signature),
        ("v1", app),
    ]
    revisions = {
        revision.digest: revision async for revision, _ in registry.manifests.revisions("team/app")
    }
    assert set(revisions) == {app, signature}
    assert revisions[signature].subject == app
    links = {digest async for digest, _ in registry.blobs.links("team/app")}
    assert set(app_blobs) <= links
    assert tool not in links
    assert [pair async for pair in registry.referrers.entries("team/app")] == [(app, signature)]
    assert [sid async for sid, _ in registry.uploads.book.open()] == [session.session_id]

    every_blob = set()
    for algorithm, shard in await registry.blobs.shards():
        async for blob in registry.blobs.in_shard(algorithm, shard):
            assert blob.has_data
            every_blob.add(blob.digest)
    assert {app, tool, signature, *app_blobs} <= every_blob


def test_multi_hasher_gives_every_digest_of_one_pass() -> None:
    hasher = MultiHasher.of("sha256", "blake3", "sha512")
    for part in (b"ab", b"", b"c" * 5000):
        hasher.update(part)
    data = b"ab" + b"c" * 5000
    assert hasher.size == len(data)
    assert hasher.digests() == {
        algorithm: Digest.of(data, algorithm) for algorithm in ("sha256", "blake3", "sha512")
    }
