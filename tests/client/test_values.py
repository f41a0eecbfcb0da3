"""Values, not just files: text and bytes, references, digests known before the push."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from arca.app import create_app
from arca.client import ArcaClient
from arca.client._files import media_type_for
from arca.client.errors import TagExists, UsageError
from arca.client.reference import ArtifactRef
from arca.storage.drivers.memory import MemoryDriver
from tests.client.test_client import Recording


@pytest.fixture
def transport() -> Recording:
    return Recording(httpx.ASGITransport(app=create_app(driver=MemoryDriver())))


@pytest.fixture
def client(transport):
    with ArcaClient("http://arca.test", transport=transport) as client:
        yield client


def test_text_and_bytes_go_round_trip(client):
    client.push_text("notes/run", "é ok\n", tag="t")
    assert client.pull_text("notes/run", "t") == "é ok\n"
    assert client.get("notes/run", "t").files[0].media_type == "text/plain"
    client.push_text("notes/run", "# Title\n", path="README.md", tag="md")
    assert client.get("notes/run", "md").files[0].media_type == "text/markdown"
    blob = bytes(range(256)) * 10
    client.push_bytes("notes/run", blob, path="weights.safetensors", tag="b")
    assert client.pull_bytes("notes/run", "b") == blob
    assert client.get("notes/run", "b").files[0].media_type == "application/vnd.safetensors"


def test_pulling_one_file_of_many_needs_its_path(client, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    client.push_files("notes/run", [tmp_path / "a.txt", tmp_path / "b.txt"], tag="two")
    with pytest.raises(UsageError, match="has 2 files; name one"):
        client.pull_bytes("notes/run", "two")
    assert client.pull_text("notes/run", "two", path="b.txt") == "b"
    with pytest.raises(UsageError, match=r"has no file 'c\.txt'"):
        client.pull_bytes("notes/run", "two", path="c.txt")


def test_the_digest_is_known_before_the_push_and_nothing_is_sent_to_learn_it(
    client, transport, tmp_path
):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").write_text("[1]")
    prepared = client.prepare_directory("q/cache", tmp_path / "out", labels={"run_id": "7"})
    assert transport.requests == []
    pushed = client.push_prepared(prepared)
    assert pushed.digest == prepared.digest
    assert str(prepared.ref) == f"q/cache@{prepared.digest}"


def test_references_parse_print_and_resolve(client):
    pushed = client.push_value("q/cache", {"rows": 1}, tag="v1")
    by_tag = ArtifactRef.parse("q/cache:v1")
    assert (by_tag.name, by_tag.tag, by_tag.digest) == ("q/cache", "v1", None)
    resolved = client.resolve(by_tag)
    assert resolved.digest == pushed.digest
    assert str(resolved) == f"q/cache@{pushed.digest}"
    short = ArtifactRef.parse(f"q/cache@{pushed.digest[7:19]}")
    assert short.is_short
    assert client.resolve(short).digest == pushed.digest
    assert client.pull_value("q/cache", pushed.digest[:19]) == {"rows": 1}  # sha256:<12 hex>
    with pytest.raises(UsageError, match="names no artifact"):
        ArtifactRef.parse("q/cache")
    with pytest.raises(UsageError):
        ArtifactRef.parse("Q/Bad:v1")


def test_a_tag_naming_another_artifact_is_not_moved_without_force(client):
    first = client.push_value("q/cache", 1, tag="v1")
    with pytest.raises(TagExists, match=f"already names {first.digest}"):
        client.push_value("q/cache", 2, tag="v1")
    assert client.pull_value("q/cache", "v1") == 1
    client.push_value("q/cache", 2, tag="v1", force=True)
    assert client.pull_value("q/cache", "v1") == 2


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("part-0.parquet", "application/vnd.apache.parquet"),
        ("rows.jsonl", "application/jsonl"),
        ("model.pt", "application/vnd.pytorch"),
        ("model.onnx", "application/onnx"),
        ("model.safetensors", "application/vnd.safetensors"),
        ("table.csv", "text/csv"),
        ("REPORT.MD", "text/markdown"),
        ("no-extension", "application/octet-stream"),
    ],
)
def test_media_types_are_guessed_the_same_on_every_machine(path, media_type):
    assert media_type_for(path) == media_type


def test_pushing_a_directory_path_as_files_is_refused(client, tmp_path):
    with pytest.raises(UsageError, match="is not a file"):
        client.push_files("q/cache", [Path(tmp_path)], tag="x")
