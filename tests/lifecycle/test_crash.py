"""A collector killed (SIGKILL) at each step, then another one: storage stays
consistent, nothing live is lost, and the second run finishes the job."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from arca.config import GcSettings, Settings
from arca.errors import BlobUnknown
from arca.lifecycle.gc import Collector
from arca.lifecycle.trash import DeletedTags, Trash
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.lifecycle.check import every_tag_pulls, no_collector_leftovers, pull_all
from tests.lifecycle.images import push_image

pytestmark = pytest.mark.anyio

LEASE = 2


def crash_settings() -> Settings:
    return dataclasses.replace(
        Settings(), gc=GcSettings(grace_seconds=1, untagged="delete", lease_seconds=LEASE)
    )


@pytest.mark.parametrize("step", ["mark", "tombstone", "verdict", "trash-item", "sweep", "trash"])
async def test_a_collector_killed_at_each_step_leaves_storage_consistent(
    tmp_path: Path, step: str
) -> None:
    root = str(tmp_path / "data")
    registry = Registry(FilesystemDriver(root), crash_settings())
    registry.events.followers.append(DeletedTags(registry.driver))
    kept, _ = await push_image(registry, "app", "v1", [b"shared", b"kept"])
    gone, gone_blobs = await push_image(registry, "app", "v2", [b"shared", b"gone-1", b"gone-2"])
    await registry.manifests.delete("app", "v2")
    await asyncio.sleep(1.2)

    killed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.lifecycle.crash_gc", root, step],
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr.decode()

    # While the dead collector's lease runs out, what is tagged still pulls.
    await pull_all(registry, "app", kept)
    await asyncio.sleep(LEASE + 0.2)
    await Collector(registry, registry.settings).run()

    await no_collector_leftovers(registry)
    assert await every_tag_pulls(registry) == 1
    for blob in gone_blobs[2:]:
        with pytest.raises(BlobUnknown):
            await registry.blobs.stat("app", blob)
        assert not await registry.blobs.exists_anywhere(blob)
    assert not await registry.driver.exists(layout.revision_link("app", gone))
    # Everything swept is in the trash exactly once, and comes back whole.
    records = [record async for record in Trash(registry).records()]
    assert len({(r.kind, r.objects) for r in records}) == len(records)
    await Trash(registry).restore(str(gone))
    assert await registry.tags.resolve("app", "v2") == gone
    await pull_all(registry, "app", gone)
