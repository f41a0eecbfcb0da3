"""arca.client against an in-process arca (ASGI transport over the memory driver)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from arca.app import create_app
from arca.client import ArcaClient, AsyncArcaClient
from arca.client.errors import (
    IntegrityError,
    NotFound,
    RequestRejected,
    TransportError,
    UsageError,
)
from arca.formats.digest import Digest
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver

BIG = 3 * (1 << 20) + 12345  # more than three 1 MiB chunks


class Recording(httpx.AsyncBaseTransport):
    """Passes requests to the app and remembers how each was sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def driver() -> MemoryDriver:
    return MemoryDriver()


@pytest.fixture
def transport(driver: MemoryDriver) -> Recording:
    return Recording(httpx.ASGITransport(app=create_app(driver=driver)))


@pytest.fixture
def client(transport: Recording):
    with ArcaClient("http://arca.test", transport=transport) as client:
        yield client


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "build"
    (root / "logs").mkdir(parents=True)
    (root / "report.html").write_bytes(b"<html>ok</html>")
    (root / "logs" / "run.log").write_bytes(b"line\n" * 100)
    (root / "model.bin").write_bytes(os.urandom(BIG))
    return root


def test_push_directory_then_pull_gives_the_same_files(client, tree, tmp_path):
    result = client.push_directory("ml/models", tree, tag="v1", labels={"run_id": "r-1"})
    assert result.digest.startswith("sha256:")
    assert [f.path for f in result.artifact.files] == ["logs/run.log", "model.bin", "report.html"]
    pulled = client.pull("ml/models", "v1", tmp_path / "out")
    assert pulled.digest == result.digest
    for file in result.artifact.files:
        assert (tmp_path / "out" / file.path).read_bytes() == (tree / file.path).read_bytes()


def test_uploads_stream_with_a_length_and_skip_blobs_already_there(client, transport, tree):
    first = client.push_directory("ml/models", tree, tag="v1")
    assert (first.uploaded, first.skipped) == (3, 0)
    puts = [r for r in transport.requests if r.method == "PUT" and "/blobs/uploads/" in r.url.path]
    assert len(puts) == 3
    for request in puts:
        assert type(request.stream).__name__ == "AsyncIteratorByteStream"  # not one bytes body
        assert int(request.headers["Content-Length"]) > 0
        assert "Transfer-Encoding" not in request.headers
    second = client.push_directory("ml/models", tree, tag="v2")
    assert (second.uploaded, second.skipped) == (0, 3)
    mounted = client.push_directory("ml/elsewhere", tree, tag="v1")  # same blobs, other repo
    assert (mounted.uploaded, mounted.skipped) == (0, 3)


def test_progress_goes_up_to_the_total_in_chunks(client, tree, tmp_path):
    pushed: list[tuple[int, int]] = []
    client.push_directory("ml/models", tree, tag="v1", progress=lambda d, t: pushed.append((d, t)))
    total = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file())
    assert pushed[0] == (0, total)
    assert pushed[-1] == (total, total)
    assert [d for d, _ in pushed] == sorted(d for d, _ in pushed)
    assert len(pushed) >= 5  # the big file reported chunk by chunk
    pulled: list[tuple[int, int]] = []
    client.pull("ml/models", "v1", tmp_path / "out", progress=lambda d, t: pulled.append((d, t)))
    assert pulled[-1] == (total, total)
    assert len(pulled) >= 5


def test_push_files_names_them_by_file_name_or_mapping(client, tree):
    by_name = client.push_files("reports", [tree / "report.html", tree / "logs" / "run.log"])
    assert [f.path for f in by_name.artifact.files] == ["report.html", "run.log"]
    mapped = client.push_files("reports", {"a/index.html": tree / "report.html"}, tag="m")
    assert [f.path for f in mapped.artifact.files] == ["a/index.html"]
    assert client.get("reports", "m").files[0].media_type == "text/html"
    with pytest.raises(UsageError, match="two files are named"):
        client.push_files("reports", [tree / "report.html", tree / "report.html"])


def test_a_value_goes_round_trip(client):
    value = {"rows": [1, 2, 3], "name": "ünïcode", "ok": True}
    result = client.push_value("results/query", value, labels={"query": "q1"})
    assert [f.path for f in result.artifact.files] == ["value.json"]
    assert client.pull_value("results/query", result.digest) == value
    assert client.pull_files("results/query", result.digest) == {
        "value.json": json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
    }
    with pytest.raises(UsageError, match="not JSON-serialisable"):
        client.push_value("results/query", {"when": datetime.now(UTC)})


def test_labels_created_and_metadata_reach_the_record(client, tree):
    created = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    result = client.push_files(
        "reports",
        [tree / "report.html"],
        tag="v9",
        tags=["stable"],
        labels={"template_id": "at_risk"},
        title="nightly",
        metadata={"duration_s": 1.5},
        created=created,
    )
    record = client.get("reports", result.digest)
    assert record.tags == ("stable", "v9")
    assert (record.title, record.version) == ("nightly", "v9")
    assert record.created == created
    assert record.labels == {"template_id": "at_risk"}
    assert record.metadata == {"duration_s": 1.5}


def test_list_latest_verify_and_delete_by_label(client, tree):
    for i in range(5):
        client.push_files(
            "ci/out",
            {"out.txt": tree / "report.html"},
            tag=f"run-{i}",
            labels={"run_id": f"r{i}", "parity": "odd" if i % 2 else "even"},
            created=datetime(2026, 1, 1, 0, i, tzinfo=UTC),
        )
    page = client.list("ci/out", {"parity": "even"}, limit=2)
    assert [a.version for a in page.artifacts] == ["run-4", "run-2"]
    assert page.cursor is not None
    assert [a.version for a in client.iter_artifacts("ci/out", page_size=2)] == [
        f"run-{i}" for i in (4, 3, 2, 1, 0)
    ]
    assert client.latest("ci/out", {"parity": "odd"}).version == "run-3"
    assert client.verify("ci/out", "run-3").ok
    deleted = client.delete_by_label("ci/out", {"run_id": "r3"})
    assert len(deleted) == 1
    assert client.latest("ci/out", {"parity": "odd"}).version == "run-1"
    run_1 = client.latest("ci/out", {"run_id": "r1"}).digest
    assert client.delete("ci/out", "run-1") == run_1
    with pytest.raises(NotFound):
        client.latest("ci/out", {"run_id": "r1"})


def test_a_corrupted_download_raises_and_leaves_nothing(client, driver, tree, tmp_path):
    client.push_files("reports", [tree / "report.html"], tag="v1")
    digest = Digest.parse("sha256:" + hashlib.sha256(b"<html>ok</html>").hexdigest())
    asyncio.run(driver.put(layout.blob_data(digest), b"<html>NO</html>"))
    with pytest.raises(IntegrityError, match=r"report\.html"):
        client.pull("reports", "v1", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # the pull created it, and took it away again
    with pytest.raises(IntegrityError):
        client.pull_files("reports", "v1")
    report = client.verify("reports", "v1")
    assert not report.ok
    assert any(line.startswith("report.html: sha256: expected") for line in report.failures)


def test_errors_say_what_kind_of_failure(client):
    with pytest.raises(NotFound) as missing:
        client.get("nothing", "v1")
    assert missing.value.code == "MANIFEST_UNKNOWN"
    with pytest.raises(RequestRejected) as invalid:
        client.list("Not/Valid")
    assert invalid.value.code == "NAME_INVALID"
    with pytest.raises(UsageError):
        client.delete_by_label("reports", {})
    with ArcaClient("http://127.0.0.1:9", timeout=2) as offline, pytest.raises(TransportError):
        offline.list("reports")


def test_the_async_client_is_the_same_client(transport, tree):
    async def scenario() -> list[str]:
        async with AsyncArcaClient("http://arca.test", transport=transport) as client:
            await client.push_directory("ml/models", tree, tag="v1", labels={"k": "v"})
            files = await client.pull_files("ml/models", "v1")
            assert files["report.html"] == b"<html>ok</html>"
            return [a.version async for a in client.iter_artifacts("ml/models", {"k": "v"})]

    assert asyncio.run(scenario()) == ["v1"]
