"""Mark and sweep over the memory driver: what is swept, what is kept and why, and
what a push re-using an old blob keeps."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import time
from collections.abc import AsyncIterator

import pytest

from arca.config import GcSettings, Settings
from arca.errors import BlobUnknown, ManifestUnknown
from arca.formats.digest import Digest
from arca.lifecycle.gc import PARSED, Collector, CollectorBusy, ParsedManifests
from arca.lifecycle.trash import DeletedTags, Trash
from arca.registry.manifests import Revision
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.lifecycle.check import every_tag_pulls, no_collector_leftovers, pull_all
from tests.lifecycle.images import MANIFEST, manifest_bytes, push_blob, push_image, push_index

pytestmark = pytest.mark.anyio

GRACE = 1


def settings(untagged: str = "delete", grace: int = GRACE) -> Settings:
    return dataclasses.replace(
        Settings(), gc=GcSettings(grace_seconds=grace, untagged=untagged, lease_seconds=5)
    )


def new_registry(untagged: str = "delete") -> Registry:
    registry = Registry(MemoryDriver(), settings(untagged))
    registry.events.followers.append(DeletedTags(registry.driver))
    return registry


async def age_past_grace() -> None:
    await asyncio.sleep(GRACE + 0.2)


async def snapshot(registry: Registry) -> dict[str, bytes]:
    found = {}
    for root in (layout.BLOBS, layout.REPOSITORIES, layout.GC, layout.TRASH):
        async for info in registry.driver.walk(root):
            found[info.path] = await registry.driver.get(info.path)
    return found


async def test_deleted_tag_frees_its_manifest_and_blobs_and_restore_brings_them_back() -> None:
    registry = new_registry()
    kept, kept_blobs = await push_image(registry, "app", "v1", [b"shared", b"only-v1"])
    gone, gone_blobs = await push_image(registry, "app", "v2", [b"shared", b"only-v2" * 1000])
    await registry.manifests.delete("app", "v2")
    await age_past_grace()

    report = await Collector(registry, registry.settings).run()

    swept = {(c.kind, c.digest) for c in report.swept}
    only_v2 = gone_blobs[2]
    assert ("revision", gone) in swept
    assert ("layer", only_v2) in swept
    assert ("blob", only_v2) in swept
    assert ("blob", gone) in swept
    assert not any(c.digest in kept_blobs for c in report.swept)
    assert report.bytes_swept >= 7000
    await pull_all(registry, "app", kept)
    with pytest.raises(BlobUnknown):
        await registry.blobs.stat("app", only_v2)
    assert not await registry.blobs.exists_anywhere(only_v2)
    assert not await registry.uploads.mount("other", only_v2, None)
    with pytest.raises(ManifestUnknown):
        await registry.manifests.get("app", str(gone))
    await no_collector_leftovers(registry)

    restored = await Trash(registry).restore(str(gone))
    assert {r.kind for r in restored} == {"revision", "layer", "blob"}
    assert await registry.tags.resolve("app", "v2") == gone
    assert set(await pull_all(registry, "app", gone)) == set(gone_blobs)

    # Restored objects start a new grace period: the next run keeps them.
    assert (await Collector(registry, registry.settings).run()).swept == []


async def test_untagged_keep_keeps_untagged_manifests_but_frees_deleted_ones() -> None:
    registry = new_registry("keep")
    first, _ = await push_image(registry, "app", "v1", [b"a"])
    second, _second_blobs = await push_image(registry, "app", "v1", [b"b"])  # v1 moves on
    third, third_blobs = await push_image(registry, "app", "v3", [b"c"])
    await registry.manifests.delete("app", str(third))  # by digest: the manifest goes
    await age_past_grace()

    report = await Collector(registry, registry.settings).run()

    swept = {c.digest for c in report.swept}
    assert first not in swept
    assert second not in swept
    assert third in swept
    assert third_blobs[1] in swept
    await pull_all(registry, "app", first)
    assert report.live["manifest untagged, kept by policy"] == 1


async def test_children_of_a_kept_index_and_referrers_of_a_kept_subject_are_kept() -> None:
    registry = new_registry()
    child, _ = await push_image(registry, "app", "amd64", [b"amd64"])
    size = len((await registry.manifests.get("app", str(child))).data)
    index = await push_index(registry, "app", "multi", [(child, size)])
    await registry.manifests.delete("app", "amd64")  # the child is untagged now
    signature, _ = await push_image(registry, "app", "sig", [b"signature"], subject=index)
    await registry.manifests.delete("app", "sig")
    orphan_subject, _ = await push_image(registry, "app", "tmp", [b"tmp"])
    orphan_referrer, _ = await push_image(
        registry, "app", "sbom", [b"sbom"], subject=orphan_subject
    )
    await registry.manifests.delete("app", "sbom")
    await registry.manifests.delete("app", "tmp")
    await age_past_grace()

    report = await Collector(registry, registry.settings).run()

    swept = {c.digest: c for c in report.swept if c.kind == "revision"}
    assert set(swept) == {orphan_subject, orphan_referrer}
    assert report.live["manifest child of a kept index"] == 1
    assert report.live["manifest referrer of a kept subject"] == 1
    await pull_all(registry, "app", index)
    await pull_all(registry, "app", signature)
    assert [r async for r in registry.referrers.entries("app")] == [(index, signature)]


async def test_nothing_younger_than_the_grace_period_is_swept() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"x"])
    await registry.manifests.delete("app", "v1")
    orphan = await push_blob(registry, "app", b"just uploaded, manifest not yet pushed")

    report = await Collector(registry, registry.settings).run()

    assert report.swept == []
    assert await registry.blobs.stat("app", orphan)


async def test_dry_run_lists_exactly_what_the_real_run_sweeps_and_writes_nothing() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"keep"])
    await push_image(registry, "app", "v2", [b"drop", b"drop-too"])
    await registry.manifests.delete("app", "v2")
    await age_past_grace()
    before = await snapshot(registry)

    dry = await Collector(registry, registry.settings).run(dry_run=True)

    assert await snapshot(registry) == before
    real = await Collector(registry, registry.settings).run()
    assert {(c.kind, c.path) for c in dry.swept} == {(c.kind, c.path) for c in real.swept}
    assert len(real.swept) == 6  # revision, 2 layer links, their 2 blobs, the manifest blob
    assert await every_tag_pulls(registry) == 1


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("tombstone", "re-used since the mark"),  # the HEAD's touch, seen by the re-check
        ("verdict", "rescued by a push"),  # after the re-check: the HEAD's verdict wins
    ],
)
async def test_a_blob_head_during_the_sweep_rescues_an_old_orphan(at: str, reason: str) -> None:
    registry = new_registry()
    orphan = await push_blob(registry, "app", b"old orphan layer")
    await age_past_grace()
    config = await push_blob(registry, "app", b"{}")

    async def reuse_during_gc(step: str) -> None:
        if step == at:
            await registry.blobs.claim("app", orphan)  # HEAD 200: the client skips the upload

    report = await Collector(registry, registry.settings, hook=reuse_during_gc).run()

    rescued = {c.kind: c.reason for c in report.kept if c.digest == orphan}
    assert rescued == {"layer": reason, "blob": "needed by a kept layer " + str(orphan)}
    data = manifest_bytes((config, 2), [(orphan, len(b"old orphan layer"))])
    digest = (await registry.manifests.put("app", "v1", data, MANIFEST)).digest
    await pull_all(registry, "app", digest)
    await no_collector_leftovers(registry)


async def test_a_manifest_put_during_the_sweep_keeps_the_old_layers_it_names() -> None:
    registry = new_registry()
    layers = [await push_blob(registry, "app", b"layer %d" % n) for n in range(5)]
    config = await push_blob(registry, "app", b"{}")
    await age_past_grace()
    pushed: list[Digest] = []

    async def push_during_gc(step: str) -> None:
        if step == "tombstone":
            data = manifest_bytes((config, 2), [(d, 7) for d in layers])
            pushed.append((await registry.manifests.put("app", "v1", data, MANIFEST)).digest)

    report = await Collector(registry, registry.settings, hook=push_during_gc).run()

    assert report.swept == []
    await pull_all(registry, "app", pushed[0])


async def test_a_claim_that_loses_to_the_collector_answers_absent_and_a_new_upload_works() -> None:
    registry = new_registry()
    orphan = await push_blob(registry, "app", b"doomed")
    await age_past_grace()
    claims: list[asyncio.Task[object]] = []

    async def claim_after_verdict(step: str) -> None:
        if step == "trash-item" and not claims:
            claims.append(asyncio.create_task(registry.blobs.claim("app", orphan)))
            await asyncio.sleep(0.1)  # the claim sees the doomed verdict and waits

    await Collector(registry, registry.settings, hook=claim_after_verdict).run()

    with pytest.raises(BlobUnknown):
        await claims[0]
    assert await push_blob(registry, "app", b"doomed") == orphan
    assert (await registry.blobs.stat("app", orphan)).size == 6


async def test_one_collector_at_a_time_and_an_expired_lease_is_taken_over() -> None:
    registry = new_registry()
    first = Collector(
        registry, dataclasses.replace(registry.settings, gc=GcSettings(lease_seconds=1))
    )
    assert await first.lease.acquire()
    with pytest.raises(CollectorBusy):
        await Collector(registry, registry.settings).run()
    await asyncio.sleep(1.1)
    report = await Collector(registry, registry.settings).run()
    assert report.finished >= report.started


async def test_trash_purge_removes_items_older_than_retention() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"x"])
    await registry.manifests.delete("app", "v1")
    await age_past_grace()
    await Collector(registry, registry.settings).run()
    trash = Trash(registry)
    assert [r async for r in trash.records()]
    assert await trash.purge(3600, time.time()) == []
    purged = await trash.purge(0, time.time())
    assert purged
    assert [r async for r in trash.records()] == []
    assert [info async for info in registry.driver.walk(layout.trash())] == []


async def test_a_manifest_written_again_after_its_verdict_stays_out_of_the_trash() -> None:
    # A push that gave up waiting for a stalled collector writes the revision again
    # (a new generation) after the verdict; the trash deletes only the bytes judged.
    registry = new_registry()
    digest, _ = await push_image(registry, "app", "v1", [b"layer"])
    await registry.manifests.delete("app", "v1")  # untagged now
    await age_past_grace()
    path = layout.revision_link("app", digest)
    again = dataclasses.replace(
        Revision.decode(await registry.driver.get(path)), generation="written-after-verdict"
    )

    async def write_after_verdict(step: str) -> None:
        if step == "verdict" and (await registry.driver.get(path)) != again.encode():
            await registry.driver.put(path, again.encode())

    report = await Collector(registry, registry.settings, hook=write_after_verdict).run()

    kept = {c.kind: c.reason for c in report.kept if c.digest == digest}
    assert kept == {
        "revision": "written again after the verdict",
        "blob": f"needed by a kept revision {digest}",  # the manifest's own bytes
    }
    assert await registry.driver.get(path) == again.encode()
    assert not [r async for r in Trash(registry).records() if r.digest == digest]
    await pull_all(registry, "app", digest)  # its layers were kept with it
    await no_collector_leftovers(registry)


async def test_restore_leaves_a_newer_object_in_place() -> None:
    registry = new_registry()
    digest, _ = await push_image(registry, "app", "v1", [b"layer"])
    await registry.manifests.delete("app", "v1")
    path = layout.revision_link("app", digest)
    newer = dataclasses.replace(
        Revision.decode(await registry.driver.get(path)), generation="pushed-again"
    )
    await age_past_grace()
    await Collector(registry, registry.settings).run()
    await registry.driver.put(path, newer.encode())  # pushed again before the restore

    await Trash(registry).restore(str(digest))

    assert await registry.driver.get(path) == newer.encode()
    assert [r async for r in Trash(registry).records()] == []


async def test_a_second_run_reads_no_manifest_again_and_the_cache_stays_bounded() -> None:
    registry = new_registry()
    digest, _ = await push_image(registry, "app", "v1", [b"layer a", b"layer b"])
    PARSED.clear()
    reads: list[Digest] = []
    original = registry.blobs.read_all

    async def counted(wanted: Digest) -> bytes:
        reads.append(wanted)
        return await original(wanted)

    setattr(registry.blobs, "read_all", counted)  # noqa: B010 (mypy: a method)
    first = await Collector(registry, registry.settings).run()
    assert reads == [digest]
    second = await Collector(registry, registry.settings).run()  # as the server's loop does
    assert reads == [digest]
    assert first.live == second.live  # the same decisions from what it remembered

    small = ParsedManifests(max_digests=10)
    parts = [Digest.of(b"%d" % n) for n in range(12)]
    small.put(parts[0], MANIFEST, tuple(parts[1:5]), ())  # 5 digests
    small.put(parts[5], MANIFEST, tuple(parts[6:10]), ())  # 10
    assert small.get(parts[0], MANIFEST) is not None  # now the most recently used
    small.put(parts[10], MANIFEST, (parts[11],), ())  # 12 > 10: the oldest goes
    assert small.get(parts[5], MANIFEST) is None
    assert small.get(parts[0], MANIFEST) == (tuple(parts[1:5]), ())
    assert len(small) == 2


async def test_an_old_untagged_manifest_tagged_again_during_a_run_is_kept() -> None:
    # Promoting an old build (PUT of the same manifest under a new tag) after the
    # mark judged it untagged: the PUT re-uses the stored revision, so it claims it.
    registry = new_registry()
    _, blobs = await push_image(registry, "app", "v1", [b"old build layer"])
    data = manifest_bytes((blobs[0], 2), [(blobs[1], len(b"old build layer"))])
    await registry.manifests.delete("app", "v1")
    await age_past_grace()

    async def promote_after_mark(step: str) -> None:
        if step == "mark":
            await registry.manifests.put("app", "stable", data, MANIFEST)

    report = await Collector(registry, registry.settings, hook=promote_after_mark).run()

    assert report.swept == []
    digest = await registry.tags.resolve("app", "stable")
    await pull_all(registry, "app", digest)
    await no_collector_leftovers(registry)


async def test_the_report_lines_name_every_object_once_and_a_dry_run_names_what_goes() -> None:
    registry = new_registry()
    kept, _ = await push_image(registry, "app", "v1", [b"shared", b"only-v1"])
    gone, _ = await push_image(registry, "app", "v2", [b"shared", b"only-v2"])
    await registry.manifests.delete("app", "v2")
    await age_past_grace()
    young = await push_blob(registry, "other", b"just uploaded")
    session = await registry.uploads.start("other")

    def judged(text: str) -> tuple[dict[str, object], list[dict[str, object]]]:
        header, *objects = (json.loads(line) for line in text.splitlines())
        return header, objects

    stored_blobs = {str(d) async for d in _all_blob_digests(registry)}
    dry_lines, real_lines = io.StringIO(), io.StringIO()
    await Collector(registry, registry.settings).run(dry_run=True, lines=dry_lines)
    report = await Collector(registry, registry.settings).run(lines=real_lines)

    header, dry = judged(dry_lines.getvalue())
    assert header["dry_run"] is True
    _, real = judged(real_lines.getvalue())
    keys = [(o["kind"], o["name"], o["digest"]) for o in real]
    assert len(keys) == len(set(keys))  # each object once
    assert {o["digest"] for o in real if o["kind"] == "blob"} == stored_blobs
    by_key = {(o["kind"], o["name"], o["digest"]): o for o in real}
    assert by_key[("revision", "app", str(kept))]["reason"] == "tagged"
    assert by_key[("revision", "app", str(gone))]["outcome"] == "swept"
    assert by_key[("layer", "other", str(young))]["reason"] == "within the grace period"
    assert by_key[("blob", None, str(young))]["reason"] == "referenced"  # by that link
    assert by_key[("upload", None, session.session_id)]["outcome"] == "live"
    swept = {(o["kind"], o["name"], o["digest"]) for o in real if o["outcome"] == "swept"}
    assert swept == {(c.kind, c.name, str(c.digest)) for c in report.swept}
    assert {(o["kind"], o["name"], o["digest"]) for o in dry if o["outcome"] == "swept"} == swept
    assert all(o["reason"] for o in real if o["outcome"] == "live")


async def _all_blob_digests(registry: Registry) -> AsyncIterator[Digest]:
    for algorithm, shard in await registry.blobs.shards():
        async for blob in registry.blobs.in_shard(algorithm, shard):
            yield blob.digest


async def test_the_purge_each_run_does_reads_no_run_younger_than_the_retention() -> None:
    registry = new_registry()
    await push_image(registry, "app", "v1", [b"x"])
    await registry.manifests.delete("app", "v1")
    await age_past_grace()
    await Collector(registry, registry.settings).run()
    read: list[str] = []
    original = registry.driver.get

    async def counted(path: str) -> bytes:
        read.append(path)
        return await original(path)

    setattr(registry.driver, "get", counted)  # noqa: B010
    trash = Trash(registry)
    assert await trash.purge(3600, time.time()) == []
    assert not [path for path in read if path.startswith(layout.trash())]
    assert await trash.purge(0, time.time() + 1)  # old enough now: read and purged
