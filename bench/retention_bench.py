"""Retention at scale: how long a plan and an apply take, and their storage calls.

Usage: .venv/bin/python bench/retention_bench.py [--repositories 10] [--runs 200]
                                                 [--families 5] [--keep 10]

Pushes `--repositories` x `--runs` CBOR artifacts (labels family and status, one
small file each, one tag each) through the registry services into a filesystem
registry in a temporary directory, then, with one policy (group_by family, keep_last
`--keep`, keep_latest_with status=pass, keep_latest), times a plan, a dry-run apply
and a real apply, and counts the driver calls of each (tests/doubles.CountingDriver).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.doubles import CountingDriver
from tests.lifecycle.retention_helpers import push_run

from arca.config import RetentionSettings, Settings
from arca.control.artifacts import ArtifactControl
from arca.lifecycle.policies import parse_policies
from arca.lifecycle.retention import Retention
from arca.lifecycle.trash import DeletedTags
from arca.registry.registry import Registry
from arca.storage.drivers.filesystem import FilesystemDriver


async def main(options: argparse.Namespace) -> None:
    policy = {
        "repositories": ["bench/**"],
        "group_by": ["family"],
        "keep_last": options.keep,
        "keep_latest_with": [{"status": "pass"}],
        "keep_latest": True,
    }
    retention = RetentionSettings(policies=parse_policies([policy]), max_delete_fraction=1.0)
    settings = dataclasses.replace(Settings(), retention=retention)
    with tempfile.TemporaryDirectory(prefix="arca-retention-bench-") as root:
        driver = CountingDriver(FilesystemDriver(root))
        registry = Registry(driver, settings)
        control = ArtifactControl.attach(registry)
        registry.events.followers.append(DeletedTags(driver))
        started = time.perf_counter()
        for repository in range(options.repositories):
            for run in range(options.runs):
                await push_run(
                    registry,
                    f"bench/r{repository}",
                    f"run-{run}",
                    minute=run,
                    labels={
                        "family": f"f{run % options.families}",
                        "status": "pass" if run % 7 == 0 else "fail",
                    },
                )
        total = options.repositories * options.runs
        print(f"pushed {total} artifacts in {time.perf_counter() - started:.1f} s")
        engine = Retention(registry, control.index, settings)
        for label, work in (
            ("plan", lambda: engine.plan()),
            ("apply (dry run)", lambda: engine.apply(dry_run=True)),
            ("apply", lambda: engine.apply(dry_run=False)),
        ):
            driver.calls.clear()
            started = time.perf_counter()
            result = await work()
            seconds = time.perf_counter() - started
            calls = collections.Counter(call[0] for call in driver.calls)
            if label == "plan":
                deleted = len(result.deletions)  # type: ignore[union-attr]
                what = f"{deleted} of {total} to delete"
            else:
                what = f"{len(result.of('deleted'))} deleted"  # type: ignore[union-attr]
            print(
                f"{label}: {seconds:.2f} s ({total / seconds:.0f} artifacts/s), {what};"
                f" storage calls {dict(sorted(calls.items()))}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--families", type=int, default=5)
    parser.add_argument("--keep", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
