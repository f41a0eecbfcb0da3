"""The artifact index: order, filters, pages, tags, deletes, other tools' manifests, rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from arca.control.index import ArtifactIndex
from arca.formats.digest import Digest
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.control.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    listing,
    push_artifact,
    push_oci,
)


def index_of(client: TestClient) -> ArtifactIndex:
    index: ArtifactIndex = client.app.state.control.index  # type: ignore[attr-defined]
    return index


def versions(body: dict[str, Any]) -> list[str]:
    return [artifact["version"] for artifact in body["artifacts"]]


def test_listing_is_newest_first_whatever_the_push_order(client):
    for minute in (5, 1, 9, 3):
        push_artifact(client, "reports", f"m{minute}", minute=minute)
    assert versions(listing(client, "reports")) == ["m9", "m5", "m3", "m1"]


def test_same_created_time_orders_by_digest(client):
    digests = [push_artifact(client, "reports", f"v{i}", minute=7) for i in range(4)]
    listed = [a["digest"] for a in listing(client, "reports")["artifacts"]]
    assert listed == sorted(digests)


def test_label_filters_select_all_given_labels(client):
    for i in range(6):
        labels = {
            "template_id": "at_risk" if i % 2 else "churn",
            "status": "pass" if i < 4 else "fail",
        }
        push_artifact(client, "reports", f"v{i}", minute=i, labels=labels)
    assert versions(listing(client, "reports", "template_id=at_risk")) == ["v5", "v3", "v1"]
    both = listing(client, "reports", "template_id=at_risk", "status=pass")
    assert versions(both) == ["v3", "v1"]
    assert listing(client, "reports", "template_id=nothing")["artifacts"] == []


def test_label_values_with_any_characters_filter_exactly(client):
    values = ["a/b", "..", "x~", "", "ünï cödé", "v" * 1024, "V" * 1024]
    for i, value in enumerate(values):
        push_artifact(client, "reports", f"v{i}", minute=i, labels={"path": value})
    for i, value in enumerate(values):
        assert versions(listing(client, "reports", f"path={value}")) == [f"v{i}"]


def test_cursor_pages_cover_everything_once(client):
    for i in range(23):
        push_artifact(client, "reports", f"v{i}", minute=i, labels={"kind": "a"})
    for labels in ((), ("kind=a",)):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            body = listing(client, "reports", *labels, **params)
            seen += versions(body)
            cursor = body["cursor"]
            if cursor is None:
                break
        assert seen == [f"v{i}" for i in reversed(range(23))]


def test_last_full_page_has_no_cursor(client):
    for i in range(4):
        push_artifact(client, "reports", f"v{i}", minute=i)
    body = listing(client, "reports", limit=4)
    assert len(body["artifacts"]) == 4
    assert body["cursor"] is None


def test_tags_follow_the_tag_store(client):
    first = push_artifact(client, "reports", "latest", minute=1)
    second = push_artifact(client, "reports", "latest", minute=2)
    body = listing(client, "reports")
    tags = {a["digest"]: a["tags"] for a in body["artifacts"]}
    assert tags == {second: ["latest"], first: []}
    client.delete("/v2/reports/manifests/latest")
    assert all(a["tags"] == [] for a in listing(client, "reports")["artifacts"])


def test_a_second_tag_on_the_same_manifest_is_listed(client):
    digest = push_artifact(client, "reports", "v1", minute=1)
    stored = client.get(f"/v2/reports/manifests/{digest}")
    response = client.put(
        "/v2/reports/manifests/stable",
        content=stored.content,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201
    assert listing(client, "reports")["artifacts"][0]["tags"] == ["v1", "stable"]


def test_deleted_manifest_leaves_the_index(client):
    keep = push_artifact(client, "reports", "keep", minute=1, labels={"run_id": "a"})
    gone = push_artifact(client, "reports", "gone", minute=2, labels={"run_id": "b"})
    assert client.delete(f"/v2/reports/manifests/{gone}").status_code == 202
    assert [a["digest"] for a in listing(client, "reports")["artifacts"]] == [keep]
    assert listing(client, "reports", "run_id=b")["artifacts"] == []


def test_manifest_pushed_by_another_tool_is_indexed_from_annotations(client):
    digest = push_oci(
        client,
        "reports",
        "oras",
        {
            "dev.arca.label.run_id": "r-9",
            "org.opencontainers.image.created": "2026-03-04T05:06:07+01:00",
            "unrelated": "x",
        },
        b"report",
    )
    [entry] = listing(client, "reports", "run_id=r-9")["artifacts"]
    assert entry["digest"] == digest
    assert entry["created"] == "2026-03-04T04:06:07Z"
    assert entry["created_source"] == "artifact"
    assert entry["labels"] == {"run_id": "r-9"}
    assert entry["artifact_type"] == "application/vnd.example.report"
    assert (entry["size"], entry["file_count"]) == (6, 1)


def test_manifest_without_created_time_uses_first_seen(client):
    push_oci(client, "reports", "untimed", {}, b"data")
    [entry] = listing(client, "reports")["artifacts"]
    assert entry["created_source"] == "first_seen"
    assert entry["created"].startswith("20")


def test_an_index_is_not_an_artifact(client):
    child = push_artifact(client, "reports", "child", minute=1)
    size = len(client.get(f"/v2/reports/manifests/{child}").content)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": size}],
    }
    response = client.put(
        "/v2/reports/manifests/all", content=json.dumps(index), headers={"Content-Type": OCI_INDEX}
    )
    assert response.status_code == 201
    assert [a["digest"] for a in listing(client, "reports")["artifacts"]] == [child]


def test_push_writes_its_own_objects_one_per_label(client_factory):
    driver = MemoryDriver()
    client = client_factory(driver)
    digest = push_artifact(client, "reports", "v1", minute=1, labels={"a": "1", "b": "2"})
    paths = sorted(p for p in driver._objects if "/_index/" in p)
    kinds = sorted(p.split("/_index/")[1].split("/")[0] for p in paths)
    assert kinds == ["digests", "entries", "labels", "labels"]
    assert all(p.endswith(digest.split(":")[1]) for p in paths)  # named for this artifact


def test_rebuild_restores_a_lost_index_and_drops_stale_entries(client):
    driver = client.app.state.registry.driver
    for i in range(5):
        push_artifact(client, "reports", f"v{i}", minute=i, labels={"run_id": f"r{i}"})
    push_oci(client, "other/repo", "x", {"dev.arca.label.k": "v"}, b"oci")
    before = listing(client, "reports")
    asyncio.run(driver.delete(layout.index("reports")))
    stale = layout.index_entry("reports", "000000000000-sha256-" + "0" * 64)
    asyncio.run(driver.put(stale, b"{}"))
    reports = asyncio.run(index_of(client).rebuild_all())
    assert {(r.name, r.entries) for r in reports} == {("reports", 5), ("other/repo", 1)}
    assert [r.removed for r in reports if r.name == "reports"] == [1]
    assert listing(client, "reports") == before
    assert versions(listing(client, "reports", "run_id=r3")) == ["v3"]


def test_a_late_write_for_a_deleted_manifest_leaves_no_entry(client):
    """A push's index update on one replica finishing after a delete on another."""
    from arca.formats.digest import Digest
    from arca.formats.manifest import parse_manifest

    digest = push_artifact(client, "reports", "v1", minute=1, labels={"run_id": "a"})
    data = client.get(f"/v2/reports/manifests/{digest}").content
    assert client.delete(f"/v2/reports/manifests/{digest}").status_code == 202
    late = index_of(client).manifest_stored(
        "reports", Digest.parse(digest), parse_manifest(data, OCI_MANIFEST), ("v1",)
    )
    asyncio.run(late)
    driver = client.app.state.registry.driver
    assert asyncio.run(_objects(driver, layout.index("reports"))) == []


async def _objects(driver, prefix: str) -> list[str]:
    return [info.path async for info in driver.walk(prefix)]


class _SlowMemoryDriver(MemoryDriver):
    """Storage with a little latency, so concurrent requests really interleave."""

    async def get(self, path: str) -> bytes:
        await asyncio.sleep(0.001)
        return await super().get(path)

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        await asyncio.sleep(0.001)
        await super().put(path, data, if_absent=if_absent)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_one_manifest_tagged_three_times_at_once_keeps_every_tag() -> None:
    from arca.config import Settings
    from arca.control.artifacts import ArtifactControl
    from arca.registry.registry import Registry

    registry = Registry(_SlowMemoryDriver(), Settings())
    control = ArtifactControl.attach(registry)

    async def body(data: bytes):
        yield data

    for blob in (b"{}", b"hello"):
        session = (await registry.uploads.start("repo")).session_id
        await registry.uploads.finish("repo", session, Digest.of(blob), body(blob))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(b"{}")),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": str(Digest.of(b"hello")),
                    "size": 5,
                }
            ],
        }
    ).encode()
    tags = ("v1", "latest", "stable")
    await asyncio.gather(*(registry.manifests.put("repo", t, manifest, OCI_MANIFEST) for t in tags))
    page = await control.page("repo", {}, 10, None)
    assert [sorted(entry.tags) for entry in page.entries] == [sorted(tags)]
    assert sorted((await control.record("repo", "v1")).tags) == sorted(tags)


class _CountingLocks(_SlowMemoryDriver):
    def __init__(self) -> None:
        super().__init__()
        self.locks = 0

    def lock(self, prefix: str) -> contextlib.AbstractAsyncContextManager[None]:
        self.locks += 1
        return super().lock(prefix)


@pytest.mark.anyio
async def test_many_concurrent_pushes_to_one_repository_are_indexed_in_shared_batches() -> None:
    """16 new images and one image tagged 8 times, all at once: every entry and tag is
    listed, and the repository's lock was taken once per batch, not once per push."""
    from arca.config import Settings
    from arca.control.artifacts import ArtifactControl
    from arca.registry.registry import Registry

    driver = _CountingLocks()
    registry = Registry(driver, Settings())
    control = ArtifactControl.attach(registry)

    async def body(data: bytes):
        yield data

    for blob in (b"{}", b"hello"):
        session = (await registry.uploads.start("repo")).session_id
        await registry.uploads.finish("repo", session, Digest.of(blob), body(blob))

    def image(n: int) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": str(Digest.of(b"{}")),
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": "application/octet-stream",
                        "digest": str(Digest.of(b"hello")),
                        "size": 5,
                    }
                ],
                "annotations": {"n": str(n)},
            }
        ).encode()

    pushes = [registry.manifests.put("repo", f"new-{n}", image(n), OCI_MANIFEST) for n in range(16)]
    pushes += [registry.manifests.put("repo", f"re-{n}", image(99), OCI_MANIFEST) for n in range(8)]
    driver.locks = 0
    await asyncio.gather(*pushes)
    page = await control.page("repo", {}, 100, None)
    assert sorted(tag for entry in page.entries for tag in entry.tags) == sorted(
        [f"new-{n}" for n in range(16)] + [f"re-{n}" for n in range(8)]
    )
    assert len(page.entries) == 17
    assert 1 <= driver.locks < 24, driver.locks
