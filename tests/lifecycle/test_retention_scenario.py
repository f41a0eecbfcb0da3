"""The issue's scenario: 5 families (keep 10, 10, 8, 12, 12), 15 runs each, mixed pass
and fail, two pins and one release tag. The plan equals the expected one artifact by
artifact with the right reasons; apply deletes exactly that; GC reclaims their bytes;
one deleted run comes back from the trash with its tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from arca.formats.digest import Digest
from arca.lifecycle.gc import Collector
from arca.lifecycle.pins import Pins
from arca.lifecycle.trash import Trash
from arca.storage import layout
from tests.lifecycle.retention_helpers import open_registry, push_run, retention, settings_with

pytestmark = pytest.mark.anyio

KEEP = {"alpha": 10, "beta": 10, "gamma": 8, "delta": 12, "eps": 12}
RUNS = 15
POLICIES = [
    {
        "name": "ten",
        "repositories": ["ci/alpha", "ci/beta"],
        "group_by": ["family"],
        "keep_last": 10,
        "keep_tags": ["^release-"],
        "keep_latest_with": [{"status": "pass"}],
        "keep_latest": True,
    },
    {
        "name": "eight",
        "repositories": ["ci/gamma"],
        "group_by": ["family"],
        "keep_last": 8,
        "keep_tags": ["^release-"],
        "keep_latest_with": [{"status": "pass"}],
        "keep_latest": True,
    },
    {
        "name": "twelve",
        "repositories": ["ci/*"],  # delta and eps: the first matching policy applies
        "group_by": ["family"],
        "keep_last": 12,
        "keep_tags": ["^release-"],
        "keep_latest_with": [{"status": "pass"}],
        "keep_latest": True,
    },
]


def status(family: str, run: int) -> str:
    if family == "gamma":  # its last pass is run 3, far beyond its newest 8
        return "pass" if run == 3 else "fail"
    return "pass" if (run + len(family)) % 3 == 0 else "fail"


async def test_plan_apply_gc_restore_of_five_families(tmp_path: Path) -> None:
    registry, control, recorder = open_registry(tmp_path, settings_with(POLICIES))
    digests: dict[tuple[str, int], Digest] = {}
    for family in KEEP:
        for run in range(RUNS):
            labels = {"family": family, "status": status(family, run), "run_id": f"{family}-{run}"}
            extra = ("release-1.0",) if (family, run) == ("beta", 0) else ()
            digests[family, run] = await push_run(
                registry, f"ci/{family}", f"run-{run}", minute=run, labels=labels, extra_tags=extra
            )
    pins = Pins(registry.driver)
    await pins.add(registry, "ci/alpha", f"{digests['alpha', 1]}", "audit 2026-17", "ann")
    await pins.add(registry, "ci/delta", "run-0", "", "bob")  # a tag pin

    # Expected, independently: newest K, newest pass, newest, pins, release tag.
    expected: dict[Digest, set[str]] = {}
    for family, keep in KEEP.items():
        newest_first = list(range(RUNS - 1, -1, -1))
        passes = [run for run in newest_first if status(family, run) == "pass"]
        for rank, run in enumerate(newest_first):
            rules = set()
            if rank < keep:
                rules.add("keep_last")
            if passes and run == passes[0]:
                rules.add("keep_latest_with")
            if rank == 0:
                rules.add("keep_latest")
            if (family, run) == ("beta", 0):
                rules.add("keep_tags")
            if (family, run) in (("alpha", 1), ("delta", 0)):
                rules = {"pinned"}
            expected[digests[family, run]] = rules

    plan = await retention(registry, control).plan()
    got = {d.digest: d for r in plan.repositories for d in r.decisions}
    assert set(got) == set(digests.values())
    for digest, rules in expected.items():
        decision = got[digest]
        if rules:
            assert decision.action == "keep", decision
            assert rules <= decision.rules, decision
        else:
            assert decision.action == "delete", decision
            assert {"keep_last", "tagged"} <= decision.rules, decision
    assert got[digests["gamma", 3]].rules == {"keep_latest_with"}  # the last pass, only
    assert "audit 2026-17" in got[digests["alpha", 1]].reasons[0].detail
    assert [r.policy for r in plan.repositories] == ["ten", "ten", "twelve", "twelve", "eight"]
    doomed = {d for d, rules in expected.items() if not rules}
    assert {d.digest for d in plan.deletions} == doomed
    # 15 - keep, minus the extra keeps: alpha (pin), beta (release), gamma (last pass),
    # delta (pin); eps loses exactly 3.
    assert len(doomed) == (5 - 1) + (5 - 1) + (7 - 1) + (3 - 1) + 3
    summary = plan.to_json()["summary"]
    assert summary["deleted"] == len(doomed)
    assert summary["safety"]["pinned"] == 2
    assert summary["safety"]["last_run"] == 5
    gamma = next(r for r in plan.to_json()["repositories"] if r["name"] == "ci/gamma")
    assert gamma["groups"][0]["group"] == {"family": "gamma"}
    assert (gamma["groups"][0]["kept"], gamma["groups"][0]["deleted"]) == (9, 6)

    report = await retention(registry, control).apply(plan, dry_run=False)
    deleted = {o.digest for o in report.of("deleted")}
    assert deleted == doomed
    assert report.of("kept") == []
    assert report.of("gone") == []
    events = [e for e in recorder.of("manifest.deleted") if e.reason == "retention"]
    assert sorted(str(e.digest) for e in events) == sorted(str(d) for d in doomed)
    for (family, run), digest in digests.items():
        exists = await registry.driver.exists(layout.revision_link(f"ci/{family}", digest))
        assert exists == (digest not in doomed), (family, run)
        assert (await control.index.entry(f"ci/{family}", digest) is None) == (digest in doomed)

    # GC reclaims the files only the deleted runs had.
    files = {
        digest: Digest.of(f"ci/{f} run-{r} {r} {sorted(_labels(f, r).items())}".encode())
        for (f, r), digest in digests.items()
    }
    gc = await Collector(registry, registry.settings).run()
    swept = {c.digest for c in gc.swept if c.kind == "blob"}
    assert {files[d] for d in doomed} <= swept
    assert not {files[d] for d in digests.values() if d not in doomed} & swept
    for digest in doomed:
        assert not await registry.driver.exists(layout.blob_data(files[digest]))

    # One deleted run comes back from the trash, with its tag, its file and its entry.
    gone = digests["eps", 0]
    outcome = next(o for o in report.outcomes if o.digest == gone)
    assert outcome.trash_id is not None
    await Trash(registry).restore(outcome.trash_id)
    assert await registry.tags.resolve("ci/eps", "run-0") == gone
    stored = await registry.manifests.get("ci/eps", "run-0")
    assert stored.revision.digest == gone
    assert await registry.driver.exists(layout.blob_data(files[gone]))
    entry = await control.index.entry("ci/eps", gone)
    assert entry is not None
    assert entry.labels["run_id"] == "eps-0"

    # The plan again: only the restored run (nothing else changed) would go.
    again = await retention(registry, control).plan()
    assert {d.digest for d in again.deletions} == {gone}


def _labels(family: str, run: int) -> dict[str, str]:
    return {"family": family, "status": status(family, run), "run_id": f"{family}-{run}"}
