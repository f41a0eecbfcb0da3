"""The embedded store: the artifact API in-process, no server; beside a server on one directory."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import arca.client
from arca.client import ArcaClient
from arca.client.errors import NotFound, UsageError
from tests.e2e.server import ArcaServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()


def test_the_embedded_store_pushes_lists_pulls_verifies_and_deletes(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.bin").write_bytes(os.urandom(5 << 20))
    with arca.client.open(tmp_path / "data") as store:
        earlier = datetime(2026, 1, 1, tzinfo=UTC)
        pushed = store.push_directory(
            "ml/model", tmp_path / "out", tag="v1", labels={"run": "1"}, created=earlier
        )
        # Listings order by whole seconds: give the second push a later one, not the clock's.
        store.push_value(
            "ml/model",
            {"auc": 0.9},
            tag="v2",
            labels={"run": "2"},
            created=earlier + timedelta(seconds=1),
        )
        assert [a.version for a in store.list("ml/model").artifacts] == ["v2", "v1"]
        assert store.latest("ml/model", {"run": "1"}).digest == pushed.digest
        store.pull("ml/model", "v1", tmp_path / "back")
        assert (tmp_path / "back" / "model.bin").read_bytes() == (
            tmp_path / "out" / "model.bin"
        ).read_bytes()
        assert store.verify("ml/model", "v1").ok
        assert store.pull_value("ml/model", "v2") == {"auc": 0.9}
        assert store.delete_by_label("ml/model", {"run": "2"})
        with pytest.raises(NotFound):
            store.get("ml/model", "v2")
    # What it wrote is ordinary arca storage: a second store (or a server) reads it.
    with arca.client.open(tmp_path / "data") as again:
        assert again.get("ml/model", "v1").digest == pushed.digest


def test_the_embedded_store_and_a_server_on_one_directory_see_each_others_pushes(server, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("12 passed\n")
    with (
        arca.client.open(server.storage) as store,
        ArcaClient(server.url) as remote,
    ):
        embedded = store.push_files("ci/runs", [report], tag="from-store", labels={"by": "store"})
        served = remote.push_files("ci/runs", [report], tag="from-server", labels={"by": "server"})
        for client in (store, remote):
            assert client.get("ci/runs", "from-store").digest == embedded.digest
            assert client.get("ci/runs", "from-server").digest == served.digest
            assert client.latest("ci/runs", {"by": "store"}).digest == embedded.digest
            assert client.latest("ci/runs", {"by": "server"}).digest == served.digest
            assert client.pull_files("ci/runs", "from-store") == {"report.txt": b"12 passed\n"}
        remote.delete("ci/runs", "from-store")
        with pytest.raises(NotFound):
            store.get("ci/runs", "from-store")


def test_the_embedded_store_and_a_server_push_at_once_and_lose_nothing(server, tmp_path):
    """Both write one repository's tags, labels and index at the same time."""
    runs = 12

    def push_many(client: ArcaClient, who: str) -> None:
        for run in range(runs):
            client.push_value(
                "ci/race", {"who": who, "run": run}, tag=f"{who}-{run}", labels={"who": who}
            )

    with arca.client.open(server.storage) as store, ArcaClient(server.url) as remote:
        threads = [
            threading.Thread(target=push_many, args=(remote, "server")),
        ]
        for thread in threads:
            thread.start()
        push_many(store, "store")
        for thread in threads:
            thread.join()
        for client in (store, remote):
            listed = list(client.iter_artifacts("ci/race"))
            tags = sorted(tag for artifact in listed for tag in artifact.tags)
            assert len(tags) == 2 * runs
            assert sorted(tags) == sorted(
                [*(f"server-{i}" for i in range(runs)), *(f"store-{i}" for i in range(runs))]
            )
            assert client.pull_value("ci/race", "server-3") == {"who": "server", "run": 3}


def test_the_async_embedded_store(tmp_path):
    async def run() -> object:
        async with arca.client.open_async(tmp_path / "data") as store:
            await store.push_value("q/cache", [1, 2, 3], tag="v1")
            return await store.pull_value("q/cache", "v1")

    assert asyncio.run(run()) == [1, 2, 3]


def test_the_embedded_store_on_s3(s3_endpoint, s3_bucket):
    options = {
        "endpoint_url": s3_endpoint,
        "region": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "addressing_style": "path",
    }
    with arca.client.open(f"s3://{s3_bucket}/team", options=options) as store:
        store.push_value("q/cache", {"rows": 3}, tag="v1")
    with arca.client.open(f"s3://{s3_bucket}/team", options=options) as store:
        assert store.pull_value("q/cache", "v1") == {"rows": 3}
        assert store.verify("q/cache", "v1").ok


def test_opening_needs_one_location(tmp_path):
    with pytest.raises(UsageError):
        arca.client.open()
    with pytest.raises(UsageError):
        arca.client.open(tmp_path, config=tmp_path / "arca.toml")


def test_a_config_with_auth_opens_without_credentials(tmp_path):
    """In-process, access control protects nothing: the caller holds the storage."""
    config = tmp_path / "arca.toml"
    config.write_text(
        f'[storage]\ndriver = "filesystem"\n[storage.filesystem]\nroot = "{tmp_path / "data"}"\n'
        "[auth]\nenabled = true\n"
    )
    with arca.client.open(config=config) as store:
        store.push_value("q/cache", {"rows": 1}, tag="v1")
        assert store.pull_value("q/cache", "v1") == {"rows": 1}
