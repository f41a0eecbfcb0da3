"""How the index lives in storage: its paths, their order, and replicas pushing at once."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arca.config import Settings
from arca.control.artifacts import ArtifactControl
from arca.formats.artifact import Artifact, ArtifactFile, encode_artifact
from arca.formats.digest import Digest
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.driver import check_path
from arca.storage.drivers.filesystem import FilesystemDriver

DIGEST = Digest("sha256", "ab" * 32)
LONG = hashlib.sha256(b"x" * 300).hexdigest()  # a value too long for a readable name


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (layout.index("a/b"), "repositories/a/b/_index"),
        (layout.index_key(0, DIGEST), f"253402300799-sha256-{'ab' * 32}"),
        (layout.index_key(253402300799, DIGEST), f"000000000000-sha256-{'ab' * 32}"),
        (layout.index_entry("r", "K"), "repositories/r/_index/entries/K"),
        (
            layout.index_label_entry("r", "run_id", "r-1", "K"),
            "repositories/r/_index/labels/run_id/v=r-1/K",
        ),
        (layout.index_label("r", "k", ""), "repositories/r/_index/labels/k/v="),
        (layout.index_label("r", "k", ".."), "repositories/r/_index/labels/k/v=%2E%2E"),
        (layout.index_label("r", "k", "a/b~"), "repositories/r/_index/labels/k/v=a%2Fb%7E"),
        (layout.index_label("r", "k", "x" * 300), f"repositories/r/_index/labels/k/h={LONG}"),
        (layout.index_digest("r", DIGEST), f"repositories/r/_index/digests/sha256-{'ab' * 32}"),
    ],
)
def test_index_paths(path, expected):
    assert path == expected
    check_path(path)


def test_keys_sort_newest_first_then_by_digest():
    older, newer = 1_700_000_000, 1_700_000_001
    low, high = Digest("sha256", "0" * 64), Digest("sha256", "f" * 64)
    keys = [layout.index_key(t, d) for t, d in ((older, low), (newer, high), (newer, low))]
    assert sorted(keys) == [keys[2], keys[1], keys[0]]
    assert all(layout.INDEX_KEY.fullmatch(key) for key in keys)


def test_label_values_never_escape_their_directory():
    for value in ("../..", "/", "a/../../b", "~", "x\x00y", "é" * 200):
        path = layout.index_label("r", "k", value)
        check_path(path)
        assert path.count("/") == layout.index_label("r", "k", "v").count("/")


def test_two_replicas_pushing_at_once_lose_no_entry(tmp_path: Path):
    """Two registries on two driver instances over one root, as two replicas would be."""

    async def replica_pushes(replica: int, count: int) -> None:
        registry = Registry(FilesystemDriver(str(tmp_path)), Settings())
        ArtifactControl.attach(registry)
        data = f"replica {replica}".encode()
        await registry.blobs.put_small(data, Digest.of(data))
        await registry.blobs.link("shared", Digest.of(data))
        file = ArtifactFile(
            "f.txt", "text/plain", len(data), Digest.of(data), Digest.of(data, "blake3")
        )
        for i in range(count):
            artifact = Artifact(
                name="shared",
                version=f"{replica}-{i}",
                created=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                labels={"replica": str(replica)},
                files=(file,),
            )
            await registry.artifacts.put("shared", f"r{replica}-{i}", encode_artifact(artifact))
            await asyncio.sleep(0)

    async def scenario() -> tuple[int, int]:
        await asyncio.gather(replica_pushes(1, 40), replica_pushes(2, 40))
        registry = Registry(FilesystemDriver(str(tmp_path)), Settings())
        control = ArtifactControl.attach(registry)
        every = [e async for e in control.index.entries("shared", {})]
        ones = [e async for e in control.index.entries("shared", {"replica": "1"})]
        return len(every), len(ones)

    assert asyncio.run(scenario()) == (80, 40)
