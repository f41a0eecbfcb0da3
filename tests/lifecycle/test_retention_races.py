"""Races: two appliers at once (two replicas on one storage), and an apply while pushes
go on. Exactly the planned set goes, once; nothing pushed, tagged or re-pushed since
the plan is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arca.config import Settings
from arca.control.artifacts import ArtifactControl
from arca.formats.digest import Digest
from arca.lifecycle.pins import Pins
from arca.lifecycle.retention import ApplyReport, RetentionBusy
from arca.lifecycle.trash import DeletedTags, Trash
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.doubles import CountingDriver
from tests.lifecycle.retention_helpers import open_registry, push_run, retention, settings_with

pytestmark = pytest.mark.anyio

POLICY = {"repositories": ["ci/**"], "group_by": ["family"], "keep_last": 3}


def _settings() -> Settings:
    return settings_with([POLICY], max_delete_fraction=0.9)


async def _runs(registry: Registry, count: int, start: int = 0) -> list[Digest]:
    return [
        await push_run(registry, "ci/app", f"run-{n}", minute=n, labels={"family": "app"})
        for n in range(start, start + count)
    ]


async def test_two_appliers_at_once_delete_the_plan_once(tmp_path: Path) -> None:
    one, control_one, _ = open_registry(tmp_path, _settings())
    two, control_two, _ = open_registry(tmp_path, _settings())  # another replica
    runs = await _runs(one, 8)
    outcomes = await asyncio.gather(
        retention(one, control_one).apply(dry_run=False),
        retention(two, control_two).apply(dry_run=False),
        return_exceptions=True,
    )
    for outcome in outcomes:
        assert not isinstance(outcome, Exception) or isinstance(outcome, RetentionBusy), outcome
    reports = [r for r in outcomes if isinstance(r, ApplyReport)]
    deleted = [o.digest for r in reports for o in r.of("deleted")]
    assert sorted(map(str, deleted)) == sorted(map(str, runs[:5]))  # once, by one of them
    records = [r async for r in Trash(one).records()]
    assert sorted(str(r.digest) for r in records) == sorted(map(str, runs[:5]))
    for number, digest in enumerate(runs[5:], start=5):
        assert await one.tags.resolve("ci/app", f"run-{number}") == digest


async def test_an_apply_racing_pushes_loses_nothing_pushed(tmp_path: Path) -> None:
    registry, control, _ = open_registry(tmp_path, _settings())
    runs = await _runs(registry, 8)
    plan = await retention(registry, control).plan()
    assert {d.digest for d in plan.deletions} == set(runs[:5])

    # Between plan and apply: newer runs pushed, one planned run tagged, one pinned.
    newer = await _runs(registry, 3, start=100)
    await registry.tags.set("ci/app", "keep-me", runs[0])
    await Pins(registry.driver).add(registry, "ci/app", str(runs[1]), "", None)

    # During the apply: more pushes, and the planned run being deleted pushed again
    # with a new tag after its old tags are gone, before it moves to the trash.
    during: list[Digest] = []

    async def push_meanwhile(step: str) -> None:
        if step == "untagged" and not during:
            during.extend(await _runs(registry, 2, start=200))
            await Pins(registry.driver).add(registry, "ci/app", "run-2", "late", "ann")
            stored = await registry.manifests.get("ci/app", str(runs[4]))
            await registry.manifests.put("ci/app", "again", stored.data, stored.revision.media_type)

    report = await retention(registry, control, hook=push_meanwhile).apply(plan, dry_run=False)
    kept = {o.digest: o.detail for o in report.of("kept")}
    assert kept[runs[0]] == "tagged since the plan: keep-me"
    assert kept[runs[1]].startswith("pinned since the plan")
    assert kept[runs[4]] == "pushed again during the apply"
    assert kept[runs[2]] == "pinned run-2 by ann: late"  # pinned while the apply ran
    for digest in [*runs[4:], *newer, *during, runs[0], runs[1], runs[2]]:
        assert await registry.driver.exists(layout.revision_link("ci/app", digest)), digest
    assert await registry.tags.resolve("ci/app", "keep-me") == runs[0]
    again = await registry.manifests.get("ci/app", "again")  # acknowledged, so it pulls
    assert again.revision.digest == runs[4]
    deleted = {o.digest for o in report.of("deleted")}
    assert deleted == {runs[3]}
    for digest in deleted:
        assert not await registry.driver.exists(layout.revision_link("ci/app", digest))


class Killed(Exception):
    """An applier stopped dead at a step (its journal left behind, as by SIGKILL)."""


async def test_a_tag_pushed_just_before_a_killed_applier_moved_the_run_brings_it_back(
    tmp_path: Path,
) -> None:
    # A push that adopts a doomed run's revision just before it moves is acknowledged;
    # the applier is killed right after the move, before it looked for new tags. The
    # apply that finishes the journal must find the tag, and bring the run back.
    policy = {**POLICY, "keep_tags": ["^again$"]}
    registry, control, _ = open_registry(tmp_path, settings_with([policy], max_delete_fraction=0.9))
    runs = await _runs(registry, 8)
    plan = await retention(registry, control).plan()
    doomed = plan.deletions[0].digest

    async def push_then_die(step: str) -> None:
        if step == "untagged":
            stored = await registry.manifests.get("ci/app", str(doomed))
            await registry.manifests.put("ci/app", "again", stored.data, stored.revision.media_type)
        elif step == "trashed":
            raise Killed

    with pytest.raises(Killed):
        await retention(registry, control, hook=push_then_die).apply(plan, dry_run=False)
    assert not await registry.driver.exists(layout.revision_link("ci/app", doomed))

    await retention(registry, control).apply(dry_run=False)
    again = await registry.manifests.get("ci/app", "again")  # acknowledged, so it pulls
    assert again.revision.digest == doomed
    (finished,) = [r async for r in retention(registry, control).reports() if r["resumed"]]
    outcomes = {o["digest"]: o for o in finished["outcomes"]}
    assert outcomes[str(doomed)]["outcome"] == "kept"
    assert outcomes[str(doomed)]["detail"] == "pushed again during the apply"
    deleted = {Digest.parse(o["digest"]) for o in finished["outcomes"] if o["outcome"] == "deleted"}
    assert deleted == set(runs[:5]) - {doomed}


async def test_an_apply_reads_each_tag_a_bounded_number_of_times() -> None:
    # Linear, not deletions x tags: the tags of a repository are read a few times in
    # all (the re-check, one scan per batch of deletions), not once per deletion.
    driver = CountingDriver(MemoryDriver())
    registry = Registry(driver, _settings())
    control = ArtifactControl.attach(registry)
    registry.events.followers.append(DeletedTags(driver))
    runs = await _runs(registry, 160)
    driver.calls.clear()
    report = await retention(registry, control).apply(dry_run=False, force=True)
    assert len(report.of("deleted")) == len(runs) - 3
    tag_reads = driver.reads_of(lambda path: path.startswith(layout.tags("ci/app")))
    assert len(tag_reads) <= 2 * (len(report.of("deleted")) + len(runs)), len(tag_reads)
    for number, digest in enumerate(runs[-3:], start=len(runs) - 3):
        assert await registry.tags.resolve("ci/app", f"run-{number}") == digest


async def test_a_run_pushed_again_by_digest_after_a_killed_apply_moved_it_is_kept(
    tmp_path: Path,
) -> None:
    # The killed applier moved the run to the trash; a client then pushes it again by
    # digest (no tag), which re-creates it, and is acknowledged. The apply that
    # finishes the journal must not move the new push to the trash.
    registry, control, _ = open_registry(tmp_path, _settings())
    await _runs(registry, 8)
    plan = await retention(registry, control).plan()
    doomed = plan.deletions[0].digest
    stored = await registry.manifests.get("ci/app", str(doomed))

    async def die_after_the_first_move(step: str) -> None:
        if step == "trashed":
            raise Killed

    with pytest.raises(Killed):
        await retention(registry, control, hook=die_after_the_first_move).apply(plan, dry_run=False)
    assert not await registry.driver.exists(layout.revision_link("ci/app", doomed))
    await asyncio.sleep(0.05)  # a later modification time than the plan's, on any clock
    await registry.manifests.put("ci/app", str(doomed), stored.data, stored.revision.media_type)

    await retention(registry, control).recover()
    again = await registry.manifests.get("ci/app", str(doomed))  # acknowledged, so it pulls
    assert again.revision.digest == doomed
    (finished,) = [r async for r in retention(registry, control).reports()]
    outcome = next(o for o in finished["outcomes"] if o["digest"] == str(doomed))
    assert (outcome["outcome"], outcome["detail"]) == ("kept", "pushed again since the plan")
