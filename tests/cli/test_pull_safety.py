"""A malicious manifest, crafted over raw HTTP against a real server, cannot make the
`arca pull` process write outside its target directory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arca.formats import cbor
from tests.e2e.server import ArcaServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()


def upload(http: httpx.Client, name: str, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = http.post(f"/v2/{name}/blobs/uploads/")
    done = http.put(f"{started.headers['Location']}?digest={digest}", content=data)
    assert done.status_code == 201, done.text
    return {"mediaType": "text/plain", "digest": digest, "size": len(data)}


def put_manifest(http: httpx.Client, name: str, tag: str, manifest: dict[str, object]) -> None:
    answer = http.put(
        f"/v2/{name}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert answer.status_code == 201, answer.text


def arca_pull(server: ArcaServer, target: str, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arca", "pull", target, "-o", str(output), "--json"],
        env={**os.environ, "ARCA_REGISTRY": server.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def test_titles_with_dot_dot_or_absolute_paths_stay_inside_the_target(server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    absolute = tmp_path / "absolute.txt"
    titles = ["../../escape.txt", str(absolute), "ok/../../../up.txt", "a\\..\\b.txt"]
    with httpx.Client(base_url=server.url) as http:
        config = upload(http, "evil/app", b"{}")
        config["mediaType"] = "application/vnd.oci.empty.v1+json"
        layers = []
        for index, title in enumerate(titles):
            layer = upload(http, "evil/app", f"payload {index}\n".encode())
            layer["annotations"] = {"org.opencontainers.image.title": title}
            layers.append(layer)
        put_manifest(
            http,
            "evil/app",
            "v1",
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers},
        )
    before = files_under(tmp_path)
    done = arca_pull(server, "evil/app:v1", work / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    written = [Path(f["written_to"]) for f in json.loads(done.stdout)["files"]]
    assert len(written) == len(titles)
    for path in written:
        assert path.resolve().is_relative_to((work / "out").resolve())
    # Every title that was not a safe relative path became the layer's digest.
    assert all(path.name.startswith("sha256:") for path in written)
    assert files_under(tmp_path) - before == {f"work/out/{p.name}" for p in written}
    assert not absolute.exists()


def test_an_arca_document_with_unsafe_paths_is_refused_by_the_registry(server, tmp_path):
    files = [
        {
            "path": path,
            "mediaType": "text/plain",
            "size": 3,
            "sha256": "sha256:" + hashlib.sha256(b"hi\n").hexdigest(),
            "blake3": "blake3:" + "0" * 64,
        }
        for path in ("../escape.txt", "/abs.txt")
    ]
    links = [{"path": "l", "target": "../../etc"}]
    with httpx.Client(base_url=server.url) as http:
        upload(http, "evil/doc", b"hi\n")
        documents: tuple[dict[str, Any], ...] = (
            {"files": files[:1]},
            {"files": files[1:]},
            {"files": files[:1], "links": links},
        )
        for document in documents:
            base: dict[str, Any] = {"format": 1, "name": "x", "version": "", "labels": {}}
            body = cbor.encode(base | {"metadata": None} | document)
            answer = http.put(
                "/v2/evil/doc/manifests/v1",
                content=body,
                headers={"Content-Type": "application/vnd.arca.artifact.v1+cbor"},
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    done = arca_pull(server, "evil/doc:v1", tmp_path / "out")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "MANIFEST_UNKNOWN"
    assert not (tmp_path / "out").exists()
