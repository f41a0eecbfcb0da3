"""Scrub finds a blob corrupted on disk; GET stops returning its wrong bytes; a push
of the right bytes repairs it; a stopped scrub resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from arca.config import Settings
from arca.errors import BlobUnknown
from arca.formats.digest import Digest
from arca.lifecycle.scrub import Scrubber
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.e2e.server import ArcaServer
from tests.lifecycle.images import push_blob

pytestmark = pytest.mark.anyio


async def test_scrub_quarantines_a_corrupt_blob_and_a_push_repairs_it(tmp_path: Path) -> None:
    registry = Registry(FilesystemDriver(str(tmp_path)), Settings())
    good = await push_blob(registry, "app", b"good bytes" * 100)
    data = os.urandom(300_000)
    bad = await push_blob(registry, "app", data)
    on_disk = tmp_path / layout.blob_data(bad)
    flipped = bytearray(on_disk.read_bytes())
    flipped[1000] ^= 0xFF
    on_disk.write_bytes(bytes(flipped))

    report = await Scrubber(registry).run()

    assert [finding.digest for finding in report.corrupt] == [bad]
    assert report.corrupt[0].actual == Digest.of(bytes(flipped))
    assert report.fast_path == report.blobs - 1  # good blobs pass on blake3 alone
    with pytest.raises(BlobUnknown):
        await registry.blobs.stat("app", bad)
    assert (tmp_path / layout.quarantine_data(bad)).read_bytes() == bytes(flipped)
    assert await registry.blobs.stat("app", good)

    assert await push_blob(registry, "app", data) == bad
    back = b"".join([chunk async for chunk in registry.blobs.read(bad)])
    assert back == data
    assert (await Scrubber(registry).run()).corrupt == []


async def test_a_stopped_scrub_resumes_after_the_shards_it_finished(tmp_path: Path) -> None:
    registry = Registry(FilesystemDriver(str(tmp_path)), Settings())
    for number in range(40):
        await push_blob(registry, "app", b"blob %d" % number)
    shards = await registry.blobs.shards()
    seen: list[int] = []

    class Stop(Exception):
        pass

    def stop_half_way(phase: str, done: int, total: int | None) -> None:
        seen.append(done)
        if done == len(shards) // 2:
            raise Stop

    with pytest.raises(Stop):
        await Scrubber(registry, progress=stop_half_way).run()
    resumed = await Scrubber(registry).run()
    assert resumed.resumed_shards == len(shards) // 2
    assert resumed.blobs < 40
    full = await Scrubber(registry).run()
    assert full.resumed_shards == 0
    assert full.blobs == 40


def test_arca_scrub_finds_corruption_and_the_server_stops_serving_it(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    server = ArcaServer(storage).start()
    try:
        data = os.urandom(1 << 20)
        digest = "sha256:" + Digest.of(data).hex
        response = httpx.post(f"{server.url}/v2/app/blobs/uploads/?digest={digest}", content=data)
        assert response.status_code == 201
        path = storage / layout.blob_data(Digest.parse(digest))
        path.write_bytes(b"X" + path.read_bytes()[1:])
        assert httpx.get(f"{server.url}/v2/app/blobs/{digest}").content != data  # wrong bytes

        scrubbed = subprocess.run(
            [sys.executable, "-m", "arca", "scrub", "--storage", str(storage), "--json"],
            capture_output=True,
            check=False,
        )
        assert scrubbed.returncode == 1, scrubbed.stderr
        assert '"ok": false' in scrubbed.stdout.decode()
        assert httpx.get(f"{server.url}/v2/app/blobs/{digest}").status_code == 404
        assert httpx.head(f"{server.url}/v2/app/blobs/{digest}").status_code == 404
    finally:
        server.stop()
