"""A tag called `latest`, and a repository called `…/artifacts`, through CLI and API.

`/api/v1/repositories/<name>/artifacts/<reference>` and `/api/v1/repositories/<name>/latest`
overlap: `demo/app/artifacts/latest` reads as either. The record wins, and
`<name>/-/latest` spells "latest" for every name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.conftest import json_out


def push(invoke, target: str, files: Path, minute: int, *labels: str) -> dict[str, Any]:
    args = [a for label in labels for a in ("--label", label)]
    result = invoke(
        "push", target, files, *args, "--created", f"2026-02-03T04:{minute:02d}:00Z", "--json"
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json_out(result)
    return document


def test_show_an_artifact_tagged_latest(invoke, tmp_path):
    (tmp_path / "out.txt").write_text("ok\n")
    pushed = push(invoke, "demo/app:latest", tmp_path / "out.txt", 1)
    result = invoke("show", "demo/app:latest", "--json")
    assert result.exit_code == 0, result.output
    assert json_out(result)["digest"] == pushed["digest"]
    assert json_out(invoke("verify", "demo/app:latest", "--json"))["ok"] is True


def test_latest_of_a_repository_named_artifacts(invoke, tmp_path):
    (tmp_path / "out.txt").write_text("ok\n")
    push(invoke, "team/artifacts:v1", tmp_path / "out.txt", 1, "status=pass")
    newest = push(invoke, "team/artifacts:v2", tmp_path / "out.txt", 2, "status=pass")
    result = invoke("latest", "team/artifacts", "-l", "status=pass", "--json")
    assert result.exit_code == 0, result.output
    assert json_out(result)["digest"] == newest["digest"]
    assert json_out(invoke("ls", "team/artifacts", "--json"))["artifacts"][0]["version"] == "v2"


def test_the_overlapping_path_is_the_record_and_dash_latest_is_latest(storage, tmp_path):
    from starlette.testclient import TestClient

    from arca.app import create_app
    from arca.storage.drivers.filesystem import FilesystemDriver
    from tests.control.helpers import push_artifact

    with TestClient(create_app(driver=FilesystemDriver(str(storage)))) as client:
        tagged = push_artifact(client, "demo/app", "latest", minute=1)
        push_artifact(client, "demo/app", "newer", minute=2)
        record = client.get("/api/v1/repositories/demo/app/artifacts/latest")
        assert record.status_code == 200, record.text
        assert record.json()["digest"] == tagged
        assert record.json()["name"] == "demo/app"
        newest = client.get("/api/v1/repositories/demo/app/-/latest")
        assert newest.status_code == 200, newest.text
        assert newest.json()["version"] == "newer"
        assert client.get("/api/v1/repositories/demo/app/latest").json() == newest.json()
        verified = client.post("/api/v1/repositories/demo/app/artifacts/latest/verify")
        assert verified.json()["digest"] == tagged
