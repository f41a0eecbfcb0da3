"""oras-py against a real arca: files, annotations, the CBOR view, CBOR pushes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import httpx

from arca.formats.artifact import (
    ARTIFACT_MEDIA_TYPE,
    Artifact,
    ArtifactFile,
    decode_artifact,
    encode_artifact,
)
from arca.formats.digest import Digest
from tests.e2e.oras_client import OrasClient
from tests.e2e.server import ArcaServer


def write_files(root: Path) -> dict[str, bytes]:
    files = {"report.html": b"<html>nightly</html>", "metrics.csv": b"a,b\n1,2\n" * 1000}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def test_oras_push_has_cbor_view_with_both_digests(
    arca: ArcaServer, tmp_path: Path, monkeypatch
) -> None:
    files = write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    host = OrasClient.host(arca.url)
    client = OrasClient(host)
    response = client.push_files(
        f"{host}/reports/nightly:v7",
        ["report.html:text/html", "metrics.csv:text/csv"],
        manifest_annotations={"dev.arca.label.run_id": "r-7"},
    )
    assert response.status_code == 201
    view = httpx.get(
        f"{arca.url}/v2/reports/nightly/manifests/v7", headers={"Accept": ARTIFACT_MEDIA_TYPE}
    )
    assert view.status_code == 200, view.text
    artifact = decode_artifact(view.content)
    assert artifact.labels == {"run_id": "r-7"}
    assert {f.path for f in artifact.files} == set(files)
    for file in artifact.files:
        assert file.size == len(files[file.path])
        assert str(file.sha256) == "sha256:" + hashlib.sha256(files[file.path]).hexdigest()
        assert str(file.blake3) == "blake3:" + blake3.blake3(files[file.path]).hexdigest()
    out = tmp_path / "pulled"
    client.pull(target=f"{host}/reports/nightly:v7", outdir=str(out))
    for name, data in files.items():
        assert (out / name).read_bytes() == data


def test_cbor_artifact_is_pullable_with_oras(arca: ArcaServer, tmp_path: Path) -> None:
    files = write_files(tmp_path)
    with httpx.Client(base_url=arca.url, timeout=30) as http:
        for data in files.values():
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            assert (
                http.post(
                    f"/v2/builds/app/blobs/uploads/?digest={digest}", content=data
                ).status_code
                == 201
            )
        artifact = Artifact(
            name="app-build",
            version="1.4.0",
            labels={"status": "pass"},
            files=tuple(
                ArtifactFile(
                    path,
                    "application/octet-stream",
                    len(data),
                    Digest.of(data),
                    Digest.of(data, "blake3"),
                )
                for path, data in files.items()
            ),
        )
        response = http.put(
            "/v2/builds/app/manifests/1.4.0",
            content=encode_artifact(artifact),
            headers={"Content-Type": ARTIFACT_MEDIA_TYPE},
        )
        assert response.status_code == 201, response.text
    host = OrasClient.host(arca.url)
    out = tmp_path / "pulled"
    OrasClient(host).pull(target=f"{host}/builds/app:1.4.0", outdir=str(out))
    for name, data in files.items():
        assert (out / name).read_bytes() == data
