"""Tags and manifests under racing writers: two workers (two Registry instances on one
storage root, like `--workers 2`) answer every request without a storage error, and
the end state is one that running the same requests one after the other could give."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arca.config import Settings
from arca.errors import ManifestUnknown
from arca.registry.registry import Registry
from arca.storage.drivers.filesystem import FilesystemDriver
from arca.storage.drivers.memory import MemoryDriver
from tests.registry.helpers import OCI_MANIFEST, digest_of, manifest_bytes, push_manifest_blobs

pytestmark = pytest.mark.anyio

ROUNDS = 120


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["filesystem", "memory"])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Registry, Registry]:
    if request.param == "memory":
        driver = MemoryDriver()
        return Registry(driver, Settings()), Registry(driver, Settings())
    root = str(tmp_path / "root")
    return (
        Registry(FilesystemDriver(root, fsync=False), Settings()),
        Registry(FilesystemDriver(root, fsync=False), Settings()),
    )


async def tag_target(registry: Registry, tag: str) -> bytes | None:
    try:
        return (await registry.manifests.get("repo", tag)).data
    except ManifestUnknown:
        return None


async def test_put_and_delete_of_one_tag_racing_both_succeed_and_leave_no_stuck_tag(
    workers: tuple[Registry, Registry],
) -> None:
    one, two = workers
    await push_manifest_blobs(one, "repo", [b"old", b"new"])
    old, new = manifest_bytes([b"old"]), manifest_bytes([b"new"])
    for round_ in range(ROUNDS):
        tag = f"t{round_}"
        await one.manifests.put("repo", tag, old, OCI_MANIFEST)
        pushed, deleted = await asyncio.gather(
            two.manifests.put("repo", tag, new, OCI_MANIFEST),
            one.manifests.delete("repo", tag),
            return_exceptions=True,
        )
        assert not isinstance(pushed, BaseException), repr(pushed)
        assert not isinstance(deleted, BaseException), repr(deleted)  # a tag was always there
        # Delete first, then the push: `new`; the push first, then the delete: nothing.
        assert await tag_target(one, tag) in (new, None), tag
    listed = (await one.tags.page("repo", 10_000, None)).tags
    for tag in listed:
        assert await tag_target(two, tag) == new, f"{tag} is listed but does not resolve"
    for round_ in range(ROUNDS):
        tag = f"t{round_}"
        assert (tag in listed) == (await tag_target(one, tag) is not None)


async def test_delete_by_digest_racing_a_push_of_it_with_a_new_tag_is_one_or_the_other(
    workers: tuple[Registry, Registry],
) -> None:
    one, two = workers
    await push_manifest_blobs(one, "repo", [b"layer"])
    for round_ in range(ROUNDS):
        manifest = manifest_bytes([b"layer"], round=str(round_))
        digest = digest_of(manifest)
        await one.manifests.put("repo", f"base{round_}", manifest, OCI_MANIFEST)
        pushed, deleted = await asyncio.gather(
            two.manifests.put("repo", f"new{round_}", manifest, OCI_MANIFEST),
            one.manifests.delete("repo", str(digest)),
            return_exceptions=True,
        )
        assert not isinstance(pushed, BaseException), repr(pushed)
        assert not isinstance(deleted, BaseException), repr(deleted)
        assert await tag_target(one, f"base{round_}") is None  # deleted in either order
        by_tag = await tag_target(two, f"new{round_}")
        by_digest = await tag_target(two, str(digest))
        # The push after the delete: both; the delete after the push: neither.
        assert (by_tag, by_digest) in ((manifest, manifest), (None, None)), round_
    listed = (await one.tags.page("repo", 10_000, None)).tags
    for tag in listed:
        assert await tag_target(two, tag) is not None, f"{tag} is listed but does not resolve"
