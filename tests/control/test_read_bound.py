"""Listing 1,000 artifacts costs a bounded number of storage reads, whatever the repository size.

The bound (docs/artifacts.md): one `list` of the index prefix, one `get` per entry
read, one `get` per distinct tag on the page; no manifest, blob or revision is read.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from arca.app import create_app
from arca.control.index import SCAN_LIMIT
from arca.formats.artifact import Artifact, ArtifactFile, encode_artifact
from arca.formats.digest import Digest
from arca.storage.drivers.memory import MemoryDriver
from tests.control.helpers import BASE, listing
from tests.doubles import CountingDriver

ARTIFACTS = 1000
READS = ("get", "open_read", "stat", "exists", "list", "walk")


async def seed(registry) -> None:
    """Push through the registry's services (the HTTP round trips would dominate)."""
    data = b"same bytes for every run"
    await registry.blobs.put_small(data, Digest.of(data))
    await registry.blobs.link("ci/results", Digest.of(data))
    file = ArtifactFile(
        "out.txt", "text/plain", len(data), Digest.of(data), Digest.of(data, "blake3")
    )
    for i in range(ARTIFACTS):
        artifact = Artifact(
            name="ci/results",
            version=f"run-{i:04d}",
            created=BASE + timedelta(minutes=i),
            labels={"template_id": "at_risk" if i % 2 else "churn", "run_id": f"run-{i:04d}"},
            files=(file,),
        )
        await registry.artifacts.put("ci/results", f"run-{i:04d}", encode_artifact(artifact))


@pytest.fixture(scope="module")
def counted():
    """A registry holding 1,000 artifacts of two templates, each with its own tag."""
    driver = CountingDriver(MemoryDriver())
    app = create_app(driver=driver)
    asyncio.run(seed(app.state.registry))
    with TestClient(app) as client:
        yield client, driver


def reads(driver: CountingDriver) -> list[tuple[str, str]]:
    return [(method, path) for method, path in driver.calls if method in READS]


def check_bound(driver: CountingDriver, entries: int) -> None:
    done = reads(driver)
    lists = [path for method, path in done if method == "list"]
    gets = [path for method, path in done if method == "get"]
    assert len(lists) == 1, lists
    assert lists[0].startswith("repositories/ci/results/_index/")
    entry_gets = [p for p in gets if "/_index/" in p]
    tag_gets = [p for p in gets if "/_manifests/tags/" in p]
    assert len(entry_gets) == entries
    assert len(tag_gets) <= entries
    assert len(done) == 1 + len(entry_gets) + len(tag_gets), done  # nothing else: no blobs


@pytest.mark.parametrize("labels", [(), ("template_id=at_risk",)], ids=["all", "one-label"])
def test_a_page_reads_one_listing_and_one_object_per_entry(counted, labels):
    client, driver = counted
    driver.calls.clear()
    body = listing(client, "ci/results", *labels, limit=100)
    assert len(body["artifacts"]) == 100
    check_bound(driver, 100)
    assert len(reads(driver)) <= 1 + 100 + 100


def test_a_deep_page_costs_the_same(counted):
    client, driver = counted
    cursor = listing(client, "ci/results", limit=900)["cursor"]
    driver.calls.clear()
    body = listing(client, "ci/results", limit=50, cursor=cursor)
    assert [a["version"] for a in body["artifacts"]] == [f"run-{i:04d}" for i in range(99, 49, -1)]
    check_bound(driver, 50)


def test_latest_reads_three_objects(counted):
    client, driver = counted
    driver.calls.clear()
    response = client.get(
        "/api/v1/repositories/ci/results/latest", params={"label": "template_id=churn"}
    )
    assert response.json()["version"] == "run-0998"
    check_bound(driver, 1)
    assert len(reads(driver)) == 3


def test_a_narrowing_second_filter_reads_at_most_the_scan_limit(counted):
    client, driver = counted
    driver.calls.clear()
    body = listing(client, "ci/results", "template_id=at_risk", "run_id=run-0001", limit=10)
    assert [a["version"] for a in body["artifacts"]] == ["run-0001"]
    done = reads(driver)
    assert len([m for m, _ in done if m == "list"]) == 1
    assert len(done) <= 1 + SCAN_LIMIT + 1
