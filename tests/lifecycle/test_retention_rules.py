"""Rules at their edges over real storage: referrers go with their subject (and come
back from the trash), children of an image index are never judged, GC keeps a pinned
manifest, and the server runs retention on its own when scheduled."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from arca.app import create_app
from arca.lifecycle.gc import Collector
from arca.lifecycle.pins import Pins
from arca.lifecycle.trash import Trash
from arca.storage import layout
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.lifecycle.images import push_image, push_index
from tests.lifecycle.retention_helpers import open_registry, push_run, retention, settings_with

KEEP_ONE = {"repositories": ["ci/**"], "keep_last": 1}


@pytest.mark.anyio
async def test_a_referrer_goes_with_its_subject_and_index_children_stay(tmp_path: Path) -> None:
    registry, control, _ = open_registry(tmp_path, settings_with([KEEP_ONE]))
    old = await push_run(registry, "ci/app", "old", minute=0, labels={})
    sbom, _ = await push_image(registry, "ci/app", "old-sbom", [b"sbom"], subject=old)
    child, _ = await push_image(registry, "ci/app", "c1", [b"c"])
    await registry.tags.delete("ci/app", "c1")  # a child by digest only, as buildx pushes
    size = len((await registry.manifests.get("ci/app", str(child))).data)
    await push_index(registry, "ci/app", "multi", [(child, size)])
    new = await push_run(registry, "ci/app", "new", minute=10**7, labels={})

    plan = await retention(registry, control).plan()
    decisions = {d.digest: d for d in plan.repositories[0].decisions}
    assert decisions[old].action == "delete"
    assert decisions[sbom].action == "delete"
    assert decisions[sbom].reasons[0].detail == f"referrer of deleted {old}"
    assert decisions[child].rules == {"index_child"}
    assert decisions[child].action == "keep"
    assert decisions[new].action == "keep"

    report = await retention(registry, control).apply(plan, dry_run=False, force=True)
    assert {o.digest for o in report.of("deleted")} == {old, sbom}
    assert not await registry.driver.exists(layout.referrer_entry("ci/app", old, sbom))
    by_digest = {o.digest: o.trash_id for o in report.outcomes}
    for digest in (old, sbom):
        trash_id = by_digest[digest]
        assert trash_id is not None
        await Trash(registry).restore(trash_id)
    assert await registry.tags.resolve("ci/app", "old-sbom") == sbom
    assert await registry.driver.exists(layout.referrer_entry("ci/app", old, sbom))


@pytest.mark.anyio
async def test_the_collector_keeps_a_pinned_manifest_no_tag_reaches(tmp_path: Path) -> None:
    registry, _, _ = open_registry(tmp_path, settings_with([KEEP_ONE]))
    pinned, blobs = await push_image(registry, "app", "v1", [b"pinned layer"])
    swept, _ = await push_image(registry, "app", "v2", [b"swept layer"])
    await Pins(registry.driver).add(registry, "app", str(pinned), "keep", None)
    await registry.tags.delete("app", "v1")
    await registry.tags.delete("app", "v2")
    await asyncio.sleep(0.05)
    report = await Collector(registry, registry.settings).run()
    assert any(c.digest == swept for c in report.swept)
    assert report.live["manifest pinned"] == 1
    assert await registry.manifests.get("app", str(pinned))
    assert await registry.driver.exists(layout.blob_data(blobs[1]))


def test_the_server_applies_retention_on_its_schedule(tmp_path: Path) -> None:
    settings = settings_with([KEEP_ONE], interval_seconds=1, max_delete_fraction=0.9)
    settings = dataclasses.replace(
        settings, gc=dataclasses.replace(settings.gc, grace_seconds=3600)
    )
    registry, _, _ = open_registry(tmp_path, settings)
    old = asyncio.run(push_run(registry, "ci/app", "old", minute=0, labels={}))
    asyncio.run(push_run(registry, "ci/app", "new", minute=10, labels={}))
    app = create_app(settings, FilesystemDriver(str(tmp_path)))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.get(f"/v2/ci/app/manifests/{old}").status_code == 404:
                break
            time.sleep(0.2)
        assert client.get(f"/v2/ci/app/manifests/{old}").status_code == 404
        assert client.get("/v2/ci/app/manifests/new").status_code == 200
        events = client.get("/api/v1/events?type=manifest.deleted").json()["events"]
        assert [e["data"]["reason"] for e in events] == ["retention"]


@pytest.mark.anyio
async def test_last_pass_follows_a_re_verification_labelled_after_the_push(
    tmp_path: Path,
) -> None:
    policy = {
        "repositories": ["ci/**"],
        "keep_last": 2,
        "keep_latest_with": [{"status": "pass"}],
    }
    registry, control, _ = open_registry(tmp_path, settings_with([policy]))
    runs = [
        await push_run(
            registry,
            "ci/app",
            f"run-{n}",
            minute=n,
            labels={"status": "pass" if n == 0 else "fail"},
        )
        for n in range(6)
    ]
    before = await retention(registry, control).plan()
    decided = {d.digest: d for d in before.repositories[0].decisions}
    assert decided[runs[0]].rules == {"keep_latest_with"}
    assert decided[runs[3]].action == "delete"

    await control.label("ci/app", "run-3", {"status": "pass"})  # re-verified: it passes
    after = await retention(registry, control).plan()
    decided = {d.digest: d for d in after.repositories[0].decisions}
    assert decided[runs[3]].rules == {"keep_latest_with"}
    assert decided[runs[0]].action == "delete"

    report = await retention(registry, control).apply(before, dry_run=False, force=True)
    kept = {o.digest: o.detail for o in report.of("kept")}
    assert kept == {runs[3]: "labels changed since the plan"}
    assert await registry.manifests.get("ci/app", "run-3")


@pytest.mark.anyio
async def test_a_deleted_runs_label_artifacts_go_to_the_trash_beside_it(tmp_path: Path) -> None:
    registry, control, _ = open_registry(tmp_path, settings_with([KEEP_ONE]))
    old = await push_run(registry, "ci/app", "old", minute=0, labels={"status": "fail"})
    await control.label("ci/app", "old", {"status": "pass"})
    await push_run(registry, "ci/app", "new", minute=10, labels={})
    (label,) = [referrer async for _, referrer in registry.referrers.entries("ci/app")]
    report = await retention(registry, control).apply(dry_run=False, force=True)
    assert [(o.digest, o.outcome) for o in report.outcomes] == [
        (old, "deleted"),
        (label, "deleted"),
    ]
    assert report.outcomes[1].detail.startswith(f"referrer: its subject {old}")
    assert not await registry.driver.exists(layout.revision_link("ci/app", label))
    assert [o.digest for o in (await retention(registry, control).apply()).outcomes] == []
