"""Artifacts pushed by `arca push` are ordinary OCI artifacts: oras-py pulls them, skopeo
copies them (and the copy is indexed with its labels); oras pushes land in `arca ls`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import json_out, make_invoke
from tests.e2e.oras_client import OrasClient
from tests.e2e.server import ArcaServer

FILES = {"report.html": b"<html>run 7</html>", "metrics/scores.csv": b"id,score\n1,0.93\n" * 50}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def pushed(server: ArcaServer, tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "build"
    for path, data in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    result = invoke(
        "push", "ci/reports:run-7", root, "-l", "run_id=run-7", "-l", "status=pass", "--json"
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json_out(result)
    return document


def skopeo(home: Path, *args: str) -> str:
    """skopeo with its own policy, registries.conf and blob-info cache (NOTES.md)."""
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.fail("skopeo is not installed (make test installs it)")
    policy = home / "policy.json"
    if not policy.exists():
        policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        (home / "registries.conf").write_text("")
        for name in ("data", "runtime", "config"):
            (home / name).mkdir(mode=0o700)
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "_CONTAINERS_ROOTLESS_UID": str(os.geteuid() or 65534),
    }
    command = [binary, "--policy", str(policy), "--registries-conf", str(home / "registries.conf")]
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_oras_pulls_what_arca_pushed(server, pushed, tmp_path):
    host = OrasClient.host(server.url)
    out = tmp_path / "oras-out"
    OrasClient(host).pull(target=f"{host}/ci/reports:run-7", outdir=str(out))
    for path, data in FILES.items():
        assert (out / path).read_bytes() == data


def test_skopeo_copies_an_arca_artifact_and_the_copy_is_indexed(server, pushed, tmp_path):
    home = tmp_path / "skopeo"
    home.mkdir()
    host = OrasClient.host(server.url)
    skopeo(
        home,
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{host}/ci/reports:run-7",
        f"docker://{host}/mirror/reports:run-7",
    )
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    [copy] = json_out(invoke("ls", "mirror/reports", "-l", "run_id=run-7", "--json"))["artifacts"]
    assert copy["digest"] == pushed["digest"]  # byte for byte the same manifest
    assert copy["labels"] == {"run_id": "run-7", "status": "pass"}
    pulled = invoke("pull", "mirror/reports:run-7", "-o", tmp_path / "copy", "--json")
    assert pulled.exit_code == 0, pulled.output
    for path, data in FILES.items():
        assert (tmp_path / "copy" / path).read_bytes() == data
    assert invoke("verify", "mirror/reports:run-7").exit_code == 0

    layout = tmp_path / "layout"
    skopeo(
        home,
        "copy",
        "--src-tls-verify=false",
        f"docker://{host}/ci/reports:run-7",
        f"oci:{layout}:run-7",
    )
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == pushed["digest"]


def test_an_oras_push_with_labels_is_listed_pulled_and_verified(server, tmp_path, monkeypatch):
    for path, data in FILES.items():
        (tmp_path / Path(path).name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    host = OrasClient.host(server.url)
    OrasClient(host).push_files(
        f"{host}/ci/reports:oras-1",
        ["report.html:text/html", "scores.csv:text/csv"],
        manifest_annotations={"dev.arca.label.run_id": "oras-1", "dev.arca.label.tool": "oras"},
    )
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    latest = invoke("latest", "ci/reports", "-l", "tool=oras", "--json")
    assert latest.exit_code == 0, latest.output
    assert json_out(latest)["labels"] == {"run_id": "oras-1", "tool": "oras"}
    pulled = invoke("pull", "ci/reports", "-l", "run_id=oras-1", "-o", tmp_path / "back")
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "back" / "scores.csv").read_bytes() == FILES["metrics/scores.csv"]
    assert invoke("verify", "ci/reports:oras-1").exit_code == 0
