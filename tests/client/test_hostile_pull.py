"""`pull` against hostile or odd artifacts: it writes exactly what checks out, or nothing.

Artifacts the client itself would refuse to push are crafted here over plain HTTP
(blobs, then the CBOR document), as a hostile or careless pusher would.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import blake3
import httpx
import pytest

from arca.app import create_app
from arca.client import ArcaClient
from arca.client.errors import IntegrityError, UnsafeArtifact, UsageError
from arca.formats.artifact import ARTIFACT_MEDIA_TYPE, Artifact, ArtifactFile, encode_artifact
from arca.formats.digest import Digest
from arca.storage.drivers.memory import MemoryDriver


@pytest.fixture
def app_transport() -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(driver=MemoryDriver()))


@pytest.fixture
def client(app_transport):
    with ArcaClient("http://arca.test", transport=app_transport) as client:
        yield client


def craft(transport: httpx.AsyncBaseTransport, name: str, tag: str, files: dict[str, bytes]):
    """Push an artifact with exactly these paths, bypassing the client's checks."""

    async def run() -> None:
        async with httpx.AsyncClient(base_url="http://arca.test", transport=transport) as http:
            described = []
            for path, data in files.items():
                sha256 = Digest("sha256", hashlib.sha256(data).hexdigest())
                started = await http.post(f"/v2/{name}/blobs/uploads/")
                location = started.headers["Location"]
                done = await http.put(f"{location}?digest={sha256}", content=data)
                assert done.status_code == 201, done.text
                described.append(
                    ArtifactFile(
                        path,
                        "application/octet-stream",
                        len(data),
                        sha256,
                        Digest("blake3", blake3.blake3(data).hexdigest()),
                    )
                )
            document = encode_artifact(Artifact(name=name, version=tag, files=tuple(described)))
            answer = await http.put(
                f"/v2/{name}/manifests/{tag}",
                content=document,
                headers={"Content-Type": ARTIFACT_MEDIA_TYPE},
            )
            assert answer.status_code == 201, answer.text

    asyncio.run(run())


def everything_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


def test_a_file_named_like_a_temporary_file_does_not_collide(client, tmp_path):
    client.push_files(
        "odd/names",
        {"x": _write(tmp_path / "a", b"x"), ".x.arca-partial": _write(tmp_path / "b", b"partial")},
        tag="v1",
    )
    result = client.pull("odd/names", "v1", tmp_path / "out")
    assert len(result.paths) == 2
    assert (tmp_path / "out" / "x").read_bytes() == b"x"
    assert (tmp_path / "out" / ".x.arca-partial").read_bytes() == b"partial"
    assert everything_under(tmp_path / "out") == [".x.arca-partial", "x"]


def test_a_name_of_250_bytes_is_pulled(client, tmp_path):
    name = "r" * 246 + ".txt"
    client.push_files("odd/names", {name: _write(tmp_path / "a", b"long")}, tag="v1")
    client.pull("odd/names", "v1", tmp_path / "out")
    assert (tmp_path / "out" / name).read_bytes() == b"long"


def test_a_name_longer_than_any_file_system_allows_is_refused_and_nothing_written(
    client, app_transport, tmp_path
):
    craft(app_transport, "odd/names", "v1", {"a.txt": b"a", "é" * 128: b"b"})  # 256 bytes
    with pytest.raises(UnsafeArtifact, match="longer than 255 bytes"):
        client.pull("odd/names", "v1", tmp_path / "out")
    assert everything_under(tmp_path / "out") == []


def test_a_file_and_a_path_below_it_are_refused_and_nothing_written(
    client, app_transport, tmp_path
):
    craft(app_transport, "odd/names", "v1", {"x": b"file", "x/y": b"below"})
    with pytest.raises(UnsafeArtifact, match="'x/y' lies below 'x', which is a file"):
        client.pull("odd/names", "v1", tmp_path / "out")
    assert everything_under(tmp_path / "out") == []


def test_push_refuses_names_pull_could_not_write(client, tmp_path):
    one, two = _write(tmp_path / "a", b"1"), _write(tmp_path / "b", b"2")
    with pytest.raises(UsageError, match=r"lies below 'x'.*arca pull could not write it"):
        client.push_files("odd/names", {"x": one, "x/y": two}, tag="v1")
    with pytest.raises(UsageError, match="longer than 255 bytes"):
        client.push_files("odd/names", {"n" * 256: one}, tag="v1")


def test_an_existing_directory_is_not_replaced_by_a_file(client, tmp_path):
    client.push_files("odd/names", {"report": _write(tmp_path / "a", b"r")}, tag="v1")
    (tmp_path / "out" / "report").mkdir(parents=True)
    with pytest.raises(UnsafeArtifact, match="is a directory"):
        client.pull("odd/names", "v1", tmp_path / "out")


def test_a_symlink_in_the_target_directory_cannot_lead_a_write_outside(client, tmp_path):
    client.push_files("odd/names", {"sub/file": _write(tmp_path / "a", b"r")}, tag="v1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(outside)
    with pytest.raises(UnsafeArtifact, match="outside"):
        client.pull("odd/names", "v1", tmp_path / "out")
    assert list(outside.iterdir()) == []


class Flooding(httpx.AsyncBaseTransport):
    """The registry, except that every blob GET streams `flood` bytes, whatever it holds."""

    def __init__(self, inner: httpx.AsyncBaseTransport, flood: int) -> None:
        self.inner, self.flood, self.sent = inner, flood, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and "/blobs/" in request.url.path:
            return httpx.Response(200, stream=_Stream(self))
        return await self.inner.handle_async_request(request)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, owner: Flooding) -> None:
        self.owner = owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"\0" * (1 << 20)
        while self.owner.sent < self.owner.flood:
            self.owner.sent += len(chunk)
            yield chunk


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_registry_streaming_more_than_the_declared_size_is_cut_off_there(
    app_transport, tmp_path, in_memory
):
    flooding = Flooding(app_transport, 64 << 20)
    with ArcaClient("http://arca.test", transport=flooding) as client:
        client.push_files(
            "odd/flood", {"small.txt": _write(tmp_path / "a", b"eleven byte")}, tag="v1"
        )
        pulling = (
            (lambda: client.pull_files("odd/flood", "v1"))
            if in_memory
            else (lambda: client.pull("odd/flood", "v1", tmp_path / "out"))
        )
        with pytest.raises(IntegrityError, match="more than the declared 11 bytes"):
            pulling()
    assert flooding.sent <= 2 << 20  # read up to the first chunk past 11 bytes, no further
    assert everything_under(tmp_path / "out") == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_cli_reports_an_unsafe_artifact_as_one_json_error(app_transport, tmp_path, monkeypatch):
    from arca import cli
    from tests.cli.conftest import json_out, make_invoke

    craft(app_transport, "odd/names", "v1", {"x": b"file", "x/y": b"below"})
    monkeypatch.setattr(
        cli,
        "_client",
        lambda registry, timeout: ArcaClient("http://arca.test", transport=app_transport),
    )
    result = make_invoke()("pull", "odd/names:v1", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 1
    assert json_out(result)["error"]["code"] == "UNSAFE_ARTIFACT"
    assert everything_under(tmp_path / "out") == []
