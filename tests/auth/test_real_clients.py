"""Real clients against `arca serve` with auth on, all through the bearer flow:
skopeo (--creds and login), podman login + push/pull, oras-py with a user and password,
and arca's own CLI (login, push, ls, token create) with a temporary DOCKER_CONFIG.
Tokens survive a restart and work on a second replica of the same storage."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from arca import cli
from tests.auth.helpers import PASSWORD
from tests.auth.servers import auth_server
from tests.cli.conftest import json_out, make_invoke
from tests.conftest import create_bucket
from tests.e2e.oci_layout import write_image
from tests.e2e.oras_client import OrasClient
from tests.e2e.server import ArcaServer, s3_environment


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    running = auth_server(tmp_path).start()
    yield running
    running.stop()


def _containers_env(home: Path) -> dict[str, str]:
    for name in ("data", "runtime", "config"):
        (home / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    return {
        **os.environ,
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
        "_CONTAINERS_ROOTLESS_UID": str(os.geteuid() or 65534),
    }


def skopeo(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.fail("skopeo is not installed (make test installs it)")
    policy = home / "policy.json"
    home.mkdir(parents=True, exist_ok=True)
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    (home / "registries.conf").write_text("")
    command = [binary, "--policy", str(policy), "--registries-conf", str(home / "registries.conf")]
    done = subprocess.run(
        [*command, *args],
        env=_containers_env(home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def host(server: ArcaServer) -> str:
    return server.url.removeprefix("http://")


def test_skopeo_with_creds_and_with_login(server, tmp_path):
    layout = tmp_path / "layout"
    write_image(layout, "v1", (2048, 5000))
    home = tmp_path / "skopeo"
    target = f"docker://{host(server)}/team/app:v1"
    refused = skopeo(home, "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", target, ok=False)
    assert refused.returncode != 0
    assert "authentication required" in refused.stderr.lower() or "401" in refused.stderr
    skopeo(
        home,
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"writer:{PASSWORD}",
        f"oci:{layout}:v1",
        target,
    )
    # a reader may pull but not push
    pushed = skopeo(
        home,
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"reader:{PASSWORD}",
        f"oci:{layout}:v1",
        f"docker://{host(server)}/team/app:v2",
        ok=False,
    )
    assert pushed.returncode != 0
    skopeo(home, "login", "--tls-verify=false", "-u", "reader", "-p", PASSWORD, host(server))
    tags = json.loads(skopeo(home, "list-tags", "--tls-verify=false", target[:-3]).stdout)
    assert tags["Tags"] == ["v1"]
    out = tmp_path / "out"
    skopeo(home, "copy", "--src-tls-verify=false", target, f"oci:{out}:v1")
    assert (out / "index.json").exists()


def _tar_layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _image_layout(root: Path, tag: str) -> None:
    """An OCI layout of one real tar layer (podman unpacks layers into vfs)."""
    import hashlib

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = _tar_layer({"hello.txt": b"hello from arca\n"})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}],
        }
    ).encode()
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **blob(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def podman(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail("podman is not installed (make test installs it)")
    storage = [
        "--storage-driver",
        "vfs",
        "--root",
        str(home / "root"),
        "--runroot",
        str(home / "run"),
    ]
    done = subprocess.run(
        [binary, *storage, *args],
        env=_containers_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_podman_login_push_and_pull(server, tmp_path):
    layout = tmp_path / "layout"
    _image_layout(layout, "v1")
    # podman refuses a run root (under XDG_RUNTIME_DIR too) longer than 50 characters
    home = Path(tempfile.mkdtemp(prefix="arca-pm-", dir="/tmp"))
    (home / "auth.json").write_text("{}")  # podman wants REGISTRY_AUTH_FILE to exist
    try:
        _podman_round_trip(server, home, layout)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _podman_round_trip(server: ArcaServer, home: Path, layout: Path) -> None:
    image = f"{host(server)}/team/podman:v1"
    podman(home, "pull", f"oci:{layout}:v1")
    image_id = podman(home, "images", "-q").stdout.split()[0]
    podman(home, "tag", image_id, image)
    refused = podman(home, "push", "--tls-verify=false", image, ok=False)
    assert refused.returncode != 0
    wrong = podman(
        home, "login", "--tls-verify=false", "-u", "writer", "-p", "wrong", host(server), ok=False
    )
    assert wrong.returncode != 0
    podman(home, "login", "--tls-verify=false", "-u", "writer", "-p", PASSWORD, host(server))
    podman(home, "push", "--tls-verify=false", image)
    podman(home, "rmi", "-a", "-f")
    podman(home, "pull", "--tls-verify=false", image)
    assert image in podman(home, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout


def test_oras_py_with_a_user_and_password(server, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("all green\n")
    anonymous = OrasClient(host(server))
    with pytest.raises(Exception):  # noqa: B017 - oras-py raises ValueError or HTTPError
        anonymous.push_files(f"{host(server)}/team/reports:v1", [str(report)])
    client = OrasClient(host(server))
    client.auth.set_basic_auth("writer", PASSWORD)
    client.push_files(f"{host(server)}/team/reports:v1", [str(report)])
    puller = OrasClient(host(server))
    puller.auth.set_basic_auth("reader", PASSWORD)
    out = tmp_path / "out"
    puller.pull(target=f"{host(server)}/team/reports:v1", outdir=str(out))
    assert (out / "report.txt").read_text() == "all green\n"


def test_arca_cli_login_push_ls_and_robot_tokens(server, tmp_path):
    docker = tmp_path / "docker"
    env = {"DOCKER_CONFIG": str(docker), "ARCA_REGISTRY": server.url, "HOME": str(tmp_path)}
    invoke = make_invoke(env)
    build = tmp_path / "build"
    build.mkdir()
    (build / "out.txt").write_text("build 1\n")
    assert invoke("push", "team/builds:1", build, "--json").exit_code != 0  # not logged in
    runner_input = f"{PASSWORD}\n"

    def run(*args: str, stdin: str | None = None):
        return CliRunner().invoke(cli.app, list(args), input=stdin, env=env)

    bad = run("login", server.url, "-u", "writer", "--password-stdin", stdin="nope\n")
    assert bad.exit_code == 1
    assert not (docker / "config.json").exists()
    good = run("login", server.url, "-u", "writer", "--password-stdin", stdin=runner_input)
    assert good.exit_code == 0, good.output
    stored = json.loads((docker / "config.json").read_text())["auths"][host(server)]["auth"]
    assert base64.b64decode(stored).decode() == f"writer:{PASSWORD}"
    assert oct((docker / "config.json").stat().st_mode & 0o777) == "0o600"
    pushed = invoke("push", "team/builds:1", build, "--json")
    assert pushed.exit_code == 0, pushed.output
    listed = json_out(invoke("ls", "team/builds", "--json"))
    assert [a["tags"] for a in listed["artifacts"]] == [["1"]]
    created = run(
        "token",
        "create",
        "--name",
        "ci",
        "--repositories",
        "team/**",
        "--actions",
        "pull,push",
        "--expires",
        "1d",
        "--registry",
        server.url,
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("arca_")
    too_much = run(
        "token",
        "create",
        "--name",
        "ci2",
        "--repositories",
        "team/**",
        "--actions",
        "delete",
        "--registry",
        server.url,
    )
    assert too_much.exit_code == 1
    # the robot logs in like a user, in another config, and pushes
    robot_env = {**env, "DOCKER_CONFIG": str(tmp_path / "robot")}
    robot_login = CliRunner().invoke(
        cli.app,
        ["login", server.url, "-u", "robot$ci", "--password-stdin"],
        input=secret + "\n",
        env=robot_env,
    )
    assert robot_login.exit_code == 0, robot_login.output
    assert make_invoke(robot_env)("push", "team/builds:2", build).exit_code == 0
    listed = run("token", "list", "--registry", server.url)
    assert "robot$ci" in listed.stdout
    assert secret not in listed.stdout
    assert run("token", "revoke", "ci", "--registry", server.url).exit_code == 0
    assert make_invoke(robot_env)("push", "team/builds:3", build).exit_code != 0
    assert run("logout", server.url).exit_code == 0
    assert host(server) not in json.loads((docker / "config.json").read_text())["auths"]


def test_tokens_survive_a_restart_and_work_on_a_second_replica(tmp_path, s3_endpoint):
    bucket = create_bucket(s3_endpoint)
    first = auth_server(tmp_path, s3_environment(s3_endpoint, bucket), recheck=0).start()
    try:
        response = httpx.get(
            f"{first.url}/auth/token",
            params={"service": "arca", "scope": "repository:team/app:pull,push"},
            auth=("writer", PASSWORD),
        )
        token = response.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (
            httpx.post(f"{first.url}/v2/team/app/blobs/uploads/", headers=headers).status_code
            == 202
        )
        second = ArcaServer(tmp_path / "second", env=first.env).start()  # same bucket
        try:
            answer = httpx.post(f"{second.url}/v2/team/app/blobs/uploads/", headers=headers)
            assert answer.status_code == 202
        finally:
            second.stop()
        first.restart()
        assert (
            httpx.post(f"{first.url}/v2/team/app/blobs/uploads/", headers=headers).status_code
            == 202
        )
    finally:
        first.stop()


def buildah(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("buildah")
    if binary is None:
        pytest.fail("buildah is not installed (make test installs it)")
    storage = [
        "--storage-driver",
        "vfs",
        "--root",
        str(home / "root"),
        "--runroot",
        str(home / "r"),
    ]
    done = subprocess.run(
        [binary, *storage, *args],
        env=_containers_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_buildah_login_push_and_pull(server, tmp_path):
    layout = tmp_path / "layout"
    _image_layout(layout, "v1")
    home = Path(tempfile.mkdtemp(prefix="arca-bh-", dir="/tmp"))  # a short run root, as podman
    (home / "auth.json").write_text("{}")
    try:
        image = f"{host(server)}/team/buildah:v1"
        buildah(home, "pull", f"oci:{layout}:v1")
        image_id = buildah(home, "images", "-q").stdout.split()[0]
        refused = buildah(
            home, "push", "--tls-verify=false", image_id, f"docker://{image}", ok=False
        )
        assert refused.returncode != 0
        buildah(home, "login", "--tls-verify=false", "-u", "writer", "-p", PASSWORD, host(server))
        buildah(home, "push", "--tls-verify=false", image_id, f"docker://{image}")
        buildah(home, "rmi", "-a", "-f")
        buildah(home, "pull", "--tls-verify=false", image)
        assert image in buildah(home, "images", "--format", "{{.Name}}:{{.Tag}}").stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)
