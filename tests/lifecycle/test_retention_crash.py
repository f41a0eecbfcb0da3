"""An applier killed (SIGKILL) at each step, then another apply: it finishes the
killed one's deletions, nothing kept is lost, every deleted run is in the trash once
with all its tags."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from arca.config import Settings
from arca.formats.digest import Digest
from arca.lifecycle.trash import Trash
from arca.storage import layout
from tests.lifecycle.retention_helpers import open_registry, push_run, retention, settings_with

pytestmark = pytest.mark.anyio

LEASE = 2
RUNS = 6
KEEP = 2


def crash_settings() -> Settings:
    policy = {"repositories": ["ci/**"], "group_by": ["family"], "keep_last": KEEP}
    return settings_with([policy], lease_seconds=LEASE, max_delete_fraction=0.9)


@pytest.mark.parametrize(
    ("step", "occurrence"),
    [("journal", 1), ("untagged", 1), ("untagged", 2), ("trashed", 2)],
)
async def test_an_apply_killed_at_each_step_is_finished_by_the_next(
    tmp_path: Path, step: str, occurrence: int
) -> None:
    root = tmp_path / "data"
    registry, control, _ = open_registry(root, crash_settings())
    runs: list[Digest] = []
    for run in range(RUNS):
        runs.append(
            await push_run(
                registry,
                "ci/app",
                f"run-{run}",
                minute=run,
                labels={"family": "app"},
                extra_tags=(f"build-{run}",),
            )
        )
    doomed, kept = runs[: RUNS - KEEP], runs[RUNS - KEEP :]

    killed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.lifecycle.crash_retention", str(root), step, str(occurrence)],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr.decode()

    # What is kept never went anywhere, even while the dead applier's lease runs out.
    for number, digest in enumerate(kept, start=RUNS - KEEP):
        assert await registry.tags.resolve("ci/app", f"run-{number}") == digest
    await asyncio.sleep(LEASE + 0.3)
    report = await retention(registry, control).apply(dry_run=False)
    if step != "journal":
        assert report.resumed == len(doomed)  # the journal was finished first

    for number, digest in enumerate(runs):
        exists = await registry.driver.exists(layout.revision_link("ci/app", digest))
        assert exists == (digest in kept), number
    for number, digest in enumerate(kept, start=RUNS - KEEP):
        stored = await registry.manifests.get("ci/app", f"build-{number}")
        assert stored.revision.digest == digest
    assert [name async for name in registry.driver.list(layout.retention_applying())] == []
    records = [r async for r in Trash(registry).records() if r.kind == "revision"]
    assert sorted(str(r.digest) for r in records) == sorted(str(d) for d in doomed)
    for record in records:  # each once, with both its tags
        number = runs.index(record.digest)
        assert record.tags == (f"build-{number}", f"run-{number}")
    await Trash(registry).restore(records[0].id)
    number = runs.index(records[0].digest)
    assert await registry.tags.resolve("ci/app", f"run-{number}") == records[0].digest
    assert await registry.tags.resolve("ci/app", f"build-{number}") == records[0].digest
