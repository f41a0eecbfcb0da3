"""What garbage collection, the trash and scrub tell the event log: a user following
the log sees every sweep, purge and quarantine, and who ran it."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from arca.config import Settings, TrashSettings
from arca.lifecycle.gc import Collector
from arca.lifecycle.scrub import Scrubber
from arca.lifecycle.trash import Trash
from arca.registry.events import (
    BlobQuarantined,
    BlobUnlinked,
    DomainEvent,
    GarbageCollected,
    ManifestDeleted,
    ManifestRestored,
    TrashPurged,
    acting_as,
)
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.lifecycle.images import push_blob, push_image
from tests.lifecycle.test_gc import age_past_grace, new_registry

pytestmark = pytest.mark.anyio
E = TypeVar("E", bound=DomainEvent)


class Recorder:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]


def recorded(registry: Registry) -> Recorder:
    recorder = Recorder()
    registry.events.followers.append(recorder)
    return recorder


async def test_a_sweep_publishes_each_manifest_and_link_and_one_summary_of_the_run() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"shared"])
    gone, blobs = await push_image(registry, "app", "v2", [b"shared", b"only-v2"])
    await registry.manifests.delete("app", "v2")
    await age_past_grace()
    log = recorded(registry)

    with acting_as("alice"):
        report = await Collector(registry, registry.settings).run()

    [deleted] = log.of(ManifestDeleted)
    assert (deleted.repository, deleted.digest, deleted.reason) == ("app", gone, "gc")
    unlinked = {(e.repository, e.digest, e.reason) for e in log.of(BlobUnlinked)}
    assert ("app", blobs[2], "gc") in unlinked
    [summary] = log.of(GarbageCollected)
    assert summary.run_id == report.run_id
    assert (summary.manifests, summary.links, summary.blobs) == (
        1,
        len(unlinked),
        sum(c.kind == "blob" for c in report.swept),
    )
    assert summary.bytes == report.bytes_swept > 0
    assert {event.actor for event in log.events} == {"alice"}
    assert summary.data()["runId"] == report.run_id


async def test_a_run_that_sweeps_nothing_and_a_dry_run_publish_nothing() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"kept"])
    _gone, _ = await push_image(registry, "app", "v2", [b"would go"])
    await registry.manifests.delete("app", "v2")
    await age_past_grace()
    log = recorded(registry)

    dry = await Collector(registry, registry.settings).run(dry_run=True)
    assert dry.swept
    assert log.events == []
    await Collector(registry, registry.settings).run()
    log.events.clear()
    assert (await Collector(registry, registry.settings).run()).swept == []
    assert log.events == []


async def test_manual_and_automatic_trash_purges_are_events_naming_the_items() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"first"])
    await registry.manifests.delete("app", "v1")
    await age_past_grace()
    await Collector(registry, registry.settings).run()
    log = recorded(registry)
    items = [record.id async for record in Trash(registry).records()]

    with acting_as("local:ops"):
        await Trash(registry).purge(0, time.time())

    [manual] = log.of(TrashPurged)
    assert sorted(manual.items) == sorted(items)
    assert manual.count == len(items)
    assert (manual.automatic, manual.actor, manual.older_than) == (False, "local:ops", 0)

    await push_image(registry, "app", "v2", [b"second"])
    await registry.manifests.delete("app", "v2")
    await age_past_grace()
    prompt = dataclasses.replace(registry.settings, trash=TrashSettings(retention_seconds=0))
    await Collector(registry, prompt).run()  # sweeps, then purges what it swept at once
    automatic = [e for e in log.of(TrashPurged) if e.automatic]
    assert len(automatic) == 1
    assert automatic[0].count > 0
    assert automatic[0].actor is None
    assert [record async for record in Trash(registry).records()] == []


async def test_a_restore_publishes_the_manifest_back_with_who_restored_it() -> None:
    registry = new_registry()
    gone, _ = await push_image(registry, "app", "v1", [b"layer"])
    await registry.manifests.delete("app", "v1")
    await age_past_grace()
    await Collector(registry, registry.settings).run()
    log = recorded(registry)
    with acting_as("bob"):
        await Trash(registry).restore(str(gone))
    [restored] = log.of(ManifestRestored)
    assert (restored.digest, restored.actor) == (gone, "bob")


async def test_scrub_publishes_each_quarantined_blob(tmp_path: Path) -> None:
    registry = Registry(FilesystemDriver(str(tmp_path)), Settings())
    await push_blob(registry, "app", b"good bytes")
    bad = await push_blob(registry, "app", os.urandom(4096))
    on_disk = tmp_path / layout.blob_data(bad)
    on_disk.write_bytes(b"x" + on_disk.read_bytes()[1:])
    log = recorded(registry)

    report = await Scrubber(registry).run()

    [event] = log.of(BlobQuarantined)
    assert (event.digest, event.actual, event.repository) == (bad, report.corrupt[0].actual, "")
    assert event.data()["actual"] == str(report.corrupt[0].actual)
