"""Real clients: oras-py pushes and pulls files and artifacts, with subjects and referrers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import oras.oci
import oras.provider
import pytest
import requests

from conformance._client import Registry, describe, expect_status
from conformance._oci import OCI_MANIFEST, image_manifest

pytestmark = pytest.mark.category("clients")

TIMEOUT = 30.0


def oras_client(registry: Registry) -> oras.provider.Registry:
    """oras-py without its retry loop (3+5+11+29+83 s of sleeps) and with timeouts."""
    client = oras.provider.Registry(hostname=registry.host, insecure=registry.plain_http)
    if registry.credentials is not None:  # oras-py then follows the bearer flow with them
        client.auth.set_basic_auth(*registry.credentials)
    unretried = oras.provider.Registry.do_request.__wrapped__  # type: ignore[attr-defined]

    def do_request(*args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = unretried(client, *args, **kwargs)
        return response

    client.do_request = do_request  # type: ignore[method-assign]
    send = client.session.request

    def request(*args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        response: requests.Response = send(*args, **kwargs)
        return response

    client.session.request = request  # type: ignore[method-assign]
    return client


def files(tmp_path: Path, **contents: bytes) -> dict[str, Path]:
    paths = {}
    for name, data in contents.items():
        path = tmp_path / name.replace("_", ".")
        path.write_bytes(data)
        paths[name] = path
    return paths


def manifest_of(registry: Registry, repo: str, reference: str) -> dict[str, Any]:
    response = registry.get_manifest(repo, reference)
    expect_status(response, 200)
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.spec("oras push/pull", "end-2", "end-4a", "end-6", "end-7", "end-3")
def test_oras_push_and_pull_files(registry: Registry, repo: str, tmp_path: Path) -> None:
    client = oras_client(registry)
    paths = files(tmp_path, notes_txt=b"hello from oras\n" * 50, data_bin=bytes(range(256)) * 9)
    annotations = {"org.example.run": "conformance", "org.opencontainers.image.title": "x"}
    response = client.push(
        target=f"{registry.host}/{repo}:v1",
        files=[f"{paths['notes_txt']}:text/plain", str(paths["data_bin"])],
        manifest_annotations=annotations,
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    manifest = manifest_of(registry, repo, "v1")
    assert manifest["annotations"] == annotations
    titles = [
        layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]
    ]
    assert titles == ["notes.txt", "data.bin"]
    out = tmp_path / "pulled"
    pulled = client.pull(target=f"{registry.host}/{repo}:v1", outdir=str(out))
    assert sorted(Path(p).name for p in pulled) == ["data.bin", "notes.txt"]
    for path in paths.values():
        assert (out / path.name).read_bytes() == path.read_bytes()


@pytest.mark.spec("oras chunked push", "end-5", "end-6")
def test_oras_chunked_push(registry: Registry, repo: str, tmp_path: Path) -> None:
    client = oras_client(registry)
    data = hashlib.sha512(b"seed").digest() * 300  # 19200 bytes: ten 2 KiB chunks
    paths = files(tmp_path, big_bin=data)
    response = client.push(
        target=f"{registry.host}/{repo}:chunked",
        files=[str(paths["big_bin"])],
        do_chunked=True,
        chunk_size=2048,
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    layer = manifest_of(registry, repo, "chunked")["layers"][0]
    pulled = registry.get_blob(repo, layer["digest"])
    expect_status(pulled, 200)
    assert pulled.content == data, describe(pulled)


@pytest.mark.spec("oras artifactType", "end-7", "end-3")
def test_oras_artifact_type(registry: Registry, repo: str, tmp_path: Path) -> None:
    client = oras_client(registry)
    container = client.get_container(f"{registry.host}/{repo}:typed")
    paths = files(tmp_path, report_json=b'{"ok": true}', config_json=b"{}")
    layer = oras.oci.NewLayer(str(paths["report_json"]), media_type="application/json")
    layer["annotations"] = {"org.opencontainers.image.title": "report.json"}
    config = oras.oci.NewLayer(
        str(paths["config_json"]), media_type="application/vnd.oci.empty.v1+json"
    )
    for path, descriptor in ((paths["report_json"], layer), (paths["config_json"], config)):
        uploaded = client.upload_blob(str(path), container, descriptor)
        assert uploaded.status_code in (200, 201), uploaded.text
    manifest = oras.oci.NewManifest()
    manifest.update(
        artifactType="application/vnd.example.report.v1",
        config=config,
        layers=[layer],
        annotations={"org.example.kind": "report"},
    )
    response = client.upload_manifest(manifest, container)
    assert response.status_code == 201, response.text
    fetched = client.get_manifest(container)
    assert fetched["artifactType"] == "application/vnd.example.report.v1"
    assert fetched["annotations"] == {"org.example.kind": "report"}
    out = tmp_path / "pulled"
    client.pull(target=f"{registry.host}/{repo}:typed", outdir=str(out))
    assert (out / "report.json").read_bytes() == b'{"ok": true}'


def push_with_subject(
    registry: Registry, repo: str, tmp_path: Path
) -> tuple[requests.Response, str, str]:
    """An image pushed over HTTP, then an oras-py artifact whose subject it is."""
    image = image_manifest()
    registry.push_manifest(repo, image, "v1")
    # The subject comes from a HEAD, not oras' Subject.from_manifest (which
    # re-serialises the JSON and so gets another tool's manifest digest wrong).
    head = registry.head_manifest(repo, "v1")
    expect_status(head, 200)
    subject = oras.oci.Subject(
        mediaType=OCI_MANIFEST,
        digest=head.headers.get("Docker-Content-Digest", image.digest),
        size=int(head.headers["Content-Length"]),
    )
    client = oras_client(registry)
    paths = files(tmp_path, sig_txt=b"signed", config_json=b'{"signer": "conformance"}')
    config_type = "application/vnd.example.signature.config.v1+json"
    response = client.push(
        target=f"{registry.host}/{repo}:signature",
        files=[str(paths["sig_txt"])],
        manifest_config=f"{paths['config_json']}:{config_type}",
        manifest_annotations={"org.example.signer": "conformance"},
        subject=subject,
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    return response, image.digest, config_type


@pytest.mark.spec("oras subject", "end-7", "subject")
def test_oras_push_with_subject(registry: Registry, repo: str, tmp_path: Path) -> None:
    _, subject_digest, _ = push_with_subject(registry, repo, tmp_path)
    manifest = manifest_of(registry, repo, "signature")
    assert manifest["subject"]["digest"] == subject_digest


@pytest.mark.spec("oras subject", "end-12a", "OCI-Subject")
@pytest.mark.reference_xfail("no referrers API: no OCI-Subject, referrers 404")
def test_oras_referrers_of_pushed_subject(registry: Registry, repo: str, tmp_path: Path) -> None:
    response, subject_digest, config_type = push_with_subject(registry, repo, tmp_path)
    assert response.headers.get("OCI-Subject") == subject_digest, dict(response.headers)
    client = oras_client(registry)
    listed = client.do_request(f"{registry.url}/v2/{repo}/referrers/{subject_digest}")
    assert listed.status_code == 200, listed.text
    descriptors = json.loads(listed.content)["manifests"]
    head = registry.head_manifest(repo, "signature")
    expect_status(head, 200)
    signature = [d for d in descriptors if d["digest"] == head.headers["Docker-Content-Digest"]]
    assert signature, descriptors
    assert signature[0]["artifactType"] == config_type, signature
    assert signature[0]["annotations"]["org.example.signer"] == "conformance", signature


@pytest.mark.spec("oras tags", "end-8a", "end-9")
def test_oras_tags_and_delete(registry: Registry, repo: str) -> None:
    keep, image = image_manifest(), image_manifest()
    registry.push_manifest(repo, keep, "keep")
    registry.push_manifest(repo, image, "v1")
    client = oras_client(registry)
    assert sorted(client.get_tags(f"{registry.host}/{repo}")) == ["keep", "v1"]
    assert client.delete_tag(f"{registry.host}/{repo}", "v1") is True
    expect_status(registry.get_manifest(repo, image.digest), 404)
    assert client.get_tags(f"{registry.host}/{repo}") == ["keep"]
