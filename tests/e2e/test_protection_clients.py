"""Immutable tags and quotas refuse real clients (skopeo, oras-py) over HTTP, and what
was stored before the refusal is exactly as it was (docs/protection.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_interop import skopeo
from tests.e2e.oci_layout import write_image
from tests.e2e.oras_client import OrasClient
from tests.e2e.server import ArcaServer

CONFIG = """
[[immutability]]
name = "releases"
repositories = ["releases/**"]
tags = ["^v[0-9]"]

[[quotas]]
name = "small"
repositories = ["small/*"]
max_bytes = 20000

[[quotas]]
name = "one-artifact"
repositories = ["single/*"]
max_artifacts = 1

[protection]
usage_cache_seconds = 0
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArcaServer]:
    root = tmp_path_factory.mktemp("protection")
    config = root / "arca.toml"
    config.write_text(CONFIG)
    server = ArcaServer(root / "data", {"ARCA_CONFIG": str(config)}).start()
    yield server
    server.stop()


# oras-py answers a 403 by trying to authenticate, and says it cannot.
ORAS_REFUSAL = (ValueError, httpx.HTTPError, OSError)


def snapshot(storage: Path) -> dict[str, str]:
    """Every stored object but the event log and upload sessions, with its sha256."""
    found = {}
    for path in storage.rglob("*"):
        relative = path.relative_to(storage).as_posix()
        skipped = relative.startswith(("events/", "uploads/")) or "/_uploads/" in relative
        if path.is_file() and not skipped:
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def unchanged(before: dict[str, str], after: dict[str, str]) -> None:
    """Every object stored before is still there with the same bytes; no manifest came."""
    assert {path: after.get(path) for path in before} == before
    new = set(after) - set(before)
    assert not [p for p in new if "/_manifests/" in p or "/_referrers/" in p], sorted(new)


def digest_of(server: ArcaServer, name: str, tag: str) -> str:
    response = httpx.head(
        f"{server.url}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


def test_skopeo_cannot_move_an_immutable_tag(server: ArcaServer, tmp_path: Path) -> None:
    home = tmp_path / "skopeo"
    home.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    write_image(first, "v1", (3000,))
    write_image(second, "v1", (4000,))
    target = f"docker://{server.url.removeprefix('http://')}/releases/app:v1.0"
    skopeo(home, "copy", "--dest-tls-verify=false", f"oci:{first}:v1", target)
    digest = digest_of(server, "releases/app", "v1.0")
    before = snapshot(server.storage)
    with pytest.raises(AssertionError, match=r"(?i)denied|immutable"):
        skopeo(home, "copy", "--dest-tls-verify=false", f"oci:{second}:v1", target)
    unchanged(before, snapshot(server.storage))
    assert digest_of(server, "releases/app", "v1.0") == digest
    # Copying the same image again is no move: it succeeds.
    skopeo(home, "copy", "--dest-tls-verify=false", f"oci:{first}:v1", target)
    assert digest_of(server, "releases/app", "v1.0") == digest


def test_skopeo_cannot_delete_an_immutable_tag(server: ArcaServer, tmp_path: Path) -> None:
    home = tmp_path / "skopeo"
    home.mkdir()
    image = tmp_path / "image"
    write_image(image, "v1", (1000,))
    target = f"docker://{server.url.removeprefix('http://')}/releases/tool:v2"
    skopeo(home, "copy", "--dest-tls-verify=false", f"oci:{image}:v1", target)
    digest = digest_of(server, "releases/tool", "v2")
    before = snapshot(server.storage)
    with pytest.raises(AssertionError, match=r"(?i)denied|immutable"):
        skopeo(home, "delete", "--tls-verify=false", target)
    unchanged(before, snapshot(server.storage))
    assert digest_of(server, "releases/tool", "v2") == digest


def test_skopeo_is_refused_a_second_artifact_over_max_artifacts(
    server: ArcaServer, tmp_path: Path
) -> None:
    home = tmp_path / "skopeo"
    home.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    write_image(first, "v1", (1000,))
    write_image(second, "v1", (1000,))
    host = server.url.removeprefix("http://")
    skopeo(
        home, "copy", "--dest-tls-verify=false", f"oci:{first}:v1", f"docker://{host}/single/a:1"
    )
    before = snapshot(server.storage)
    with pytest.raises(AssertionError, match=r"(?i)denied|quota"):
        skopeo(
            home,
            "copy",
            "--dest-tls-verify=false",
            f"oci:{second}:v1",
            f"docker://{host}/single/a:2",
        )
    unchanged(before, snapshot(server.storage))
    assert httpx.get(f"{server.url}/v2/single/a/manifests/2").status_code == 404


def test_oras_is_refused_a_file_over_max_bytes_before_it_is_stored(
    server: ArcaServer, tmp_path: Path
) -> None:
    host = OrasClient.host(server.url)
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small.write_bytes(b"s" * 5000)
    big.write_bytes(b"b" * 30_000)
    oras = OrasClient(host)
    oras.push_files(f"{host}/small/app:one", [str(small)])
    before = snapshot(server.storage)
    with pytest.raises(ORAS_REFUSAL):
        oras.push_files(f"{host}/small/app:two", [str(big)])
    after = snapshot(server.storage)
    unchanged(before, after)
    big_digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert not [path for path in after if big_digest in path]
    # What oras-py got (it reports every 403 as an auth failure) is the quota's DENIED.
    data = big.read_bytes()
    answer = httpx.post(
        f"{server.url}/v2/small/app/blobs/uploads/?digest=sha256:{big_digest}", content=data
    )
    assert answer.status_code == 403
    assert "quota max_bytes of rule 'small'" in answer.json()["errors"][0]["message"]
    # What was there still pulls.
    out = tmp_path / "out"
    oras.pull(target=f"{host}/small/app:one", outdir=str(out))
    assert (out / "small.txt").read_bytes() == small.read_bytes()


def test_oras_cannot_move_an_immutable_tag(server: ArcaServer, tmp_path: Path) -> None:
    host = OrasClient.host(server.url)
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("one")
    two.write_text("two")
    oras = OrasClient(host)
    oras.push_files(f"{host}/releases/notes:v3", [str(one)])
    digest = digest_of(server, "releases/notes", "v3")
    before = snapshot(server.storage)
    with pytest.raises(ORAS_REFUSAL):
        oras.push_files(f"{host}/releases/notes:v3", [str(two)])
    unchanged(before, snapshot(server.storage))
    assert digest_of(server, "releases/notes", "v3") == digest
