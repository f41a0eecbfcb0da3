"""Real clients: skopeo (containers/image) copies, syncs, inspects, lists and deletes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conformance._client import Registry, describe, expect_status
from conformance._oci import (
    Manifest,
    image_index,
    image_manifest,
    read_oci_layout_blob,
    read_oci_layout_tag,
    write_oci_layout,
)
from conformance._registry import require_tool

pytestmark = pytest.mark.category("clients")

TIMEOUT = 180


class Skopeo:
    """skopeo with its own policy, registries.conf and blob-info cache.

    The cache (normally /var/lib/containers/cache for root) remembers which
    registry holds which blob; a private one per session keeps runs apart.
    """

    def __init__(self, home: Path) -> None:
        self.binary = require_tool("skopeo")
        self.policy = home / "policy.json"
        self.policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        self.registries_conf = home / "registries.conf"
        self.registries_conf.write_text("")
        for name in ("data", "runtime", "config"):
            (home / name).mkdir(mode=0o700)
        self.env = {
            **os.environ,
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_RUNTIME_DIR": str(home / "runtime"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "REGISTRY_AUTH_FILE": str(home / "auth.json"),
            # As root, containers/image ignores XDG_DATA_HOME for its cache
            # unless it believes it runs rootless.
            "_CONTAINERS_ROOTLESS_UID": str(os.geteuid() or 65534),
        }

    def run(self, *args: str) -> str:
        command = [
            self.binary,
            "--policy",
            str(self.policy),
            "--registries-conf",
            str(self.registries_conf),
            *args,
        ]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        assert result.returncode == 0, (
            f"skopeo failed ({result.returncode}): {' '.join(command)}\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
        )
        return result.stdout


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Skopeo:
    client = Skopeo(tmp_path_factory.mktemp("skopeo"))
    if registry.credentials is not None:  # `skopeo login`: later commands use its auth file
        username, password = registry.credentials
        client.run(
            "login",
            *tls(registry, "tls-verify"),
            "--username",
            username,
            "--password",
            password,
            registry.host,
        )
    return client


def tls(registry: Registry, *flags: str) -> list[str]:
    value = "false" if registry.plain_http else "true"
    return [f"--{flag}={value}" for flag in flags]


def docker_ref(registry: Registry, repo: str, tag: str | None = None) -> str:
    return f"docker://{registry.host}/{repo}" + (f":{tag}" if tag else "")


def expect_blobs(registry: Registry, repo: str, manifest: Manifest) -> None:
    for blob in manifest.blobs:
        pulled = registry.get_blob(repo, blob.digest)
        expect_status(pulled, 200)
        assert pulled.content == blob.data, describe(pulled)
    for child in manifest.children:
        registry.expect_manifest(repo, child.digest, child)
        expect_blobs(registry, repo, child)


def expect_layout_holds(layout: Path, tag: str, manifest: Manifest) -> None:
    entry = read_oci_layout_tag(layout, tag)
    assert entry["digest"] == manifest.digest, entry
    assert read_oci_layout_blob(layout, manifest.digest) == manifest.body
    for blob in manifest.blobs:
        assert read_oci_layout_blob(layout, blob.digest) == blob.data
    for child in manifest.children:
        assert read_oci_layout_blob(layout, child.digest) == child.body
        for blob in child.blobs:
            assert read_oci_layout_blob(layout, blob.digest) == blob.data


@pytest.mark.spec("skopeo copy", "end-2", "end-3", "end-4a", "end-6", "end-7")
def test_skopeo_copy_in_and_out(
    registry: Registry, repo: str, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = image_manifest(layers=3)
    write_oci_layout(tmp_path / "in", {"v1": image})
    skopeo.run(
        "copy", *tls(registry, "dest-tls-verify"), f"oci:{tmp_path / 'in'}:v1",
        docker_ref(registry, repo, "v1"),
    )  # fmt: skip
    registry.expect_manifest(repo, "v1", image)
    expect_blobs(registry, repo, image)
    skopeo.run(
        "copy", *tls(registry, "src-tls-verify"), docker_ref(registry, repo, "v1"),
        f"oci:{tmp_path / 'out'}:v1",
    )  # fmt: skip
    expect_layout_holds(tmp_path / "out", "v1", image)


@pytest.mark.spec("skopeo copy --all", "end-3", "end-7")
def test_skopeo_copy_all_multi_platform_index(
    registry: Registry, repo: str, skopeo: Skopeo, tmp_path: Path
) -> None:
    index = image_index(tuple(image_manifest(architecture=a) for a in ("amd64", "arm64")))
    write_oci_layout(tmp_path / "in", {"multi": index})
    skopeo.run(
        "copy", "--all", *tls(registry, "dest-tls-verify"), f"oci:{tmp_path / 'in'}:multi",
        docker_ref(registry, repo, "multi"),
    )  # fmt: skip
    registry.expect_manifest(repo, "multi", index)
    expect_blobs(registry, repo, index)
    skopeo.run(
        "copy", "--all", *tls(registry, "src-tls-verify"), docker_ref(registry, repo, "multi"),
        f"oci:{tmp_path / 'out'}:multi",
    )  # fmt: skip
    expect_layout_holds(tmp_path / "out", "multi", index)


@pytest.mark.spec("skopeo inspect", "end-2", "end-3")
def test_skopeo_inspect_raw(registry: Registry, repo: str, skopeo: Skopeo) -> None:
    image = image_manifest()
    registry.push_manifest(repo, image, "v1")
    raw = skopeo.run(
        "inspect", "--raw", *tls(registry, "tls-verify"), docker_ref(registry, repo, "v1")
    )
    assert raw.encode() == image.body
    config = skopeo.run(
        "inspect", "--raw", "--config", *tls(registry, "tls-verify"),
        docker_ref(registry, repo, "v1"),
    )  # fmt: skip
    assert config.encode() == image.blobs[0].data
    described = json.loads(
        skopeo.run("inspect", *tls(registry, "tls-verify"), docker_ref(registry, repo, "v1"))
    )
    assert described["Digest"] == image.digest, described
    assert described["Architecture"] == "amd64"


@pytest.mark.spec("skopeo list-tags", "end-8a", "end-8b")
def test_skopeo_list_tags(registry: Registry, repo: str, skopeo: Skopeo) -> None:
    image = image_manifest(layers=1, layer_size=16)
    tags = ["v1", "v2", "latest", "x.y-z_1"]
    registry.push_manifest(repo, image, tags[0])
    for tag in tags[1:]:
        expect_status(registry.put_manifest(repo, tag, image.body, image.media_type), 201)
    listed = json.loads(
        skopeo.run("list-tags", *tls(registry, "tls-verify"), docker_ref(registry, repo))
    )
    assert sorted(listed["Tags"]) == sorted(tags), listed


@pytest.mark.spec("skopeo sync", "end-3", "end-7", "end-8a")
def test_skopeo_sync_to_directory_and_back(
    registry: Registry, repo: str, skopeo: Skopeo, tmp_path: Path
) -> None:
    images = {"v1": image_manifest(), "v2": image_manifest(docker=True)}
    for tag, image in images.items():
        registry.push_manifest(repo, image, tag)
    out = tmp_path / "synced"
    skopeo.run(
        "sync", "--src", "docker", "--dest", "dir", *tls(registry, "src-tls-verify"),
        f"{registry.host}/{repo}", str(out),
    )  # fmt: skip
    leaf = repo.rsplit("/", 1)[-1]
    for tag, image in images.items():
        assert (out / f"{leaf}:{tag}" / "manifest.json").read_bytes() == image.body
    namespace = registry.new_repo("synced-back")
    skopeo.run(
        "sync", "--src", "dir", "--dest", "docker", *tls(registry, "dest-tls-verify"),
        str(out), f"{registry.host}/{namespace}",
    )  # fmt: skip
    for tag, image in images.items():
        registry.expect_manifest(f"{namespace}/{leaf}", tag, image)
        expect_blobs(registry, f"{namespace}/{leaf}", image)


@pytest.mark.spec("skopeo copy", "end-11", "end-3")
def test_skopeo_copy_between_repositories(registry: Registry, skopeo: Skopeo) -> None:
    source, target = registry.new_repo("skopeo-source"), registry.new_repo("skopeo-target")
    image = image_manifest(layers=2)
    registry.push_manifest(source, image, "v1")
    skopeo.run(
        "copy", *tls(registry, "src-tls-verify", "dest-tls-verify"),
        docker_ref(registry, source, "v1"), docker_ref(registry, target, "v1"),
    )  # fmt: skip
    registry.expect_manifest(target, "v1", image)
    expect_blobs(registry, target, image)


@pytest.mark.spec("skopeo delete", "end-9")
def test_skopeo_delete(registry: Registry, repo: str, skopeo: Skopeo) -> None:
    keep, image = image_manifest(), image_manifest()
    registry.push_manifest(repo, keep, "keep")
    registry.push_manifest(repo, image, "v1")
    skopeo.run("delete", *tls(registry, "tls-verify"), docker_ref(registry, repo, "v1"))
    expect_status(registry.get_manifest(repo, image.digest), 404)
    expect_status(registry.get_manifest(repo, "v1"), 404)
    registry.expect_manifest(repo, "keep", keep)
