"""`arca gc --report FILE` against storage: one JSON line per object judged, and the
run recorded in the event log with the local user as its actor."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

from arca.config import Settings
from arca.events.log import EventFilter, EventLog
from arca.registry.registry import Registry
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.lifecycle.images import push_image


def arca_gc(storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARCA_GC_GRACE_SECONDS": "0", "ARCA_GC_UNTAGGED": "delete"}
    return subprocess.run(
        [sys.executable, "-m", "arca", "gc", "--storage", str(storage), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )


def test_arca_gc_report_streams_every_object_and_the_run_names_who_ran_it(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "data"

    async def build() -> None:
        registry = Registry(FilesystemDriver(str(storage)), Settings())
        await push_image(registry, "app", "v1", [b"kept layer"])
        await push_image(registry, "app", "v2", [b"garbage layer"])
        await registry.manifests.delete("app", "v2")
        await registry.driver.close()

    asyncio.run(build())
    dry, real = tmp_path / "dry.jsonl", tmp_path / "real.jsonl"

    arca_gc(storage, "--dry-run", "--report", str(dry), "--json")
    summary = json.loads(arca_gc(storage, "--report", str(real), "--json").stdout)

    def objects(path: Path) -> list[dict[str, object]]:
        header, *rest = (json.loads(line) for line in path.read_text().splitlines())
        assert set(header) >= {"run_id", "dry_run"}
        return rest

    swept = {(o["kind"], o["digest"]) for o in objects(real) if o["outcome"] == "swept"}
    assert swept == {(c["kind"], c["digest"]) for c in summary["swept"]}
    assert swept == {(o["kind"], o["digest"]) for o in objects(dry) if o["outcome"] == "swept"}
    assert {o["reason"] for o in objects(real) if o["outcome"] == "live"} >= {
        "tagged",
        "used by a kept manifest",
        "referenced",
    }

    async def events() -> list[dict[str, object]]:
        driver = FilesystemDriver(str(storage))
        page = await EventLog(driver).page(None, 100, EventFilter())
        await driver.close()
        return page.events

    [run] = [e for e in asyncio.run(events()) if e["type"] == "dev.arca.gc.swept"]
    data = run["data"]
    assert isinstance(data, dict)
    assert data["runId"] == summary["run_id"]
    assert data["actor"] == f"local:{getpass.getuser()}"
