"""The workflow commands in-process: output, `--json`, and the exit codes scripts rely on."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from arca import cli
from arca.client.sync import ArcaClient
from arca.config import load_settings
from tests.cli.conftest import json_out, make_invoke


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    (root / "tables").mkdir(parents=True)
    (root / "summary.txt").write_text("12 passed\n")
    (root / "tables" / "a.csv").write_text("a,b\n1,2\n")
    return root


def push(invoke, target: str, *paths: Path | str, minute: int = 0, labels=()):
    args = [a for label in labels for a in ("--label", label)]
    result = invoke(
        "push", target, *paths, *args, "--created", f"2026-02-03T04:{minute:02d}:00Z", "--json"
    )
    assert result.exit_code == 0, result.output
    return json_out(result)


def test_push_directory_then_pull_and_show(invoke, files, tmp_path):
    pushed = push(invoke, "ci/build:v1", files, labels=["run_id=r1"])
    assert [f["path"] for f in pushed["files"]] == ["summary.txt", "tables/a.csv"]
    assert pushed["tags"] == ["v1"]
    assert pushed["labels"] == {"run_id": "r1"}
    result = invoke("pull", "ci/build:v1", "-o", tmp_path / "back", "--json")
    assert result.exit_code == 0, result.output
    assert json_out(result)["digest"] == pushed["digest"]
    assert (tmp_path / "back" / "tables" / "a.csv").read_text() == "a,b\n1,2\n"
    shown = invoke("show", f"ci/build@{pushed['digest']}")
    assert shown.exit_code == 0
    assert "tables/a.csv" in shown.stdout
    assert "run_id=r1" in shown.stdout


def test_human_output_of_push_and_ls(invoke, files):
    result = invoke("push", "ci/build:v1", files / "summary.txt", "-l", "run_id=r1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ci/build@sha256:")
    assert "pushed 1 file (" in result.stderr
    listed = invoke("ls", "ci/build")
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["CREATED", "DIGEST", "TAGS", "LABELS", "SIZE", "FILES", "MARK"]
    assert "run_id=r1" in row
    assert "v1" in row


def test_ls_pages_and_latest(invoke, files):
    for i in range(5):
        push(invoke, f"ci/build:v{i}", files / "summary.txt", minute=i, labels=[f"n={i % 2}"])
    page = json_out(invoke("ls", "ci/build", "--limit", "2", "--json"))
    assert [a["version"] for a in page["artifacts"]] == ["v4", "v3"]
    rest = json_out(invoke("ls", "ci/build", "--cursor", page["cursor"], "--json"))
    assert [a["version"] for a in rest["artifacts"]] == ["v2", "v1", "v0"]
    every = json_out(invoke("ls", "ci/build", "--all", "--limit", "2", "-l", "n=0", "--json"))
    assert [a["version"] for a in every["artifacts"]] == ["v4", "v2", "v0"]
    latest = invoke("latest", "ci/build", "-l", "n=1", "--json")
    assert latest.exit_code == 0
    assert json_out(latest)["version"] == "v3"


def test_pull_without_reference_takes_the_latest_match(invoke, files, tmp_path):
    push(invoke, "ci/build:old", files / "summary.txt", minute=1, labels=["t=a"])
    newest = push(invoke, "ci/build:new", files, minute=2, labels=["t=a"])
    result = invoke("pull", "ci/build", "-l", "t=a", "-o", tmp_path / "latest", "--json")
    assert result.exit_code == 0, result.output
    assert json_out(result)["digest"] == newest["digest"]


def test_verify_exit_codes(invoke, files, storage):
    pushed = push(invoke, "ci/build:v1", files, labels=["t=a"])
    ok = invoke("verify", "ci/build:v1")
    assert ok.exit_code == 0
    assert ok.stdout.startswith("ok ")
    blob = pushed["files"][0]["sha256"].split(":")[1]
    (storage / "blobs" / "sha256" / blob[:2] / blob / "data").write_text("13 passed\n")
    failed = invoke("verify", "ci/build", "-l", "t=a", "--json")
    assert failed.exit_code == 1
    report = json_out(failed)
    assert report["ok"] is False
    [bad] = [c for r in report["results"] for c in r["checks"] if not c["ok"]]
    assert bad["path"] == "summary.txt"
    human = invoke("verify", "ci/build:v1")
    assert human.exit_code == 1
    assert f"summary.txt: sha256: expected sha256:{blob}, found sha256:" in human.stdout
    assert "verification failed: 1 of 1 artifact" in human.stderr


def test_rm_by_label_and_by_reference(invoke, files):
    for i in range(3):
        push(invoke, f"ci/build:v{i}", files / "summary.txt", minute=i, labels=[f"run_id=r{i}"])
    removed = invoke("rm", "ci/build", "--label", "run_id=r1", "--json")
    assert removed.exit_code == 0
    assert len(json_out(removed)["deleted"]) == 1
    assert invoke("rm", "ci/build:v0").exit_code == 0
    left = json_out(invoke("ls", "ci/build", "--json"))
    assert [a["version"] for a in left["artifacts"]] == ["v2"]
    nothing = invoke("rm", "ci/build", "--label", "run_id=r1", "--json")
    assert nothing.exit_code == 0
    assert json_out(nothing)["deleted"] == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["latest", "ci/build", "-l", "run_id=none"], 1),
        (["pull", "ci/build:nope"], 1),
        (["show", "ci/build:nope"], 1),
        (["verify", "ci/build:nope"], 1),
        (["rm", "ci/build:nope"], 1),
        (["ls", "ci/missing"], 1),
        (["ls", "ci/build", "-l", "no-equals"], 2),
        (["ls", "Bad/Name"], 2),
        (["ls", "ci/build:tag"], 2),
        (["rm", "ci/build"], 2),
        (["rm", "ci/build:v1", "-l", "a=b"], 2),
        (["show", "ci/build"], 2),
        (["push", "ci/build:v1", "does-not-exist.txt"], 2),
        (["push", "ci/build@sha256:" + "0" * 64, "x"], 2),
        (["push", "ci/build:v1", "{files}", "--created", "yesterday"], 2),
        (["push", "ci/build:v1", "{files}", "--label", "bad key=1"], 2),
    ],
)
def test_exit_codes(invoke, files, args, code):
    push(invoke, "ci/build:v1", files / "summary.txt")
    args = [str(files) if arg == "{files}" else arg for arg in args]
    result = invoke(*args)
    assert result.exit_code == code, result.output


def test_json_errors_are_one_document_on_stdout(invoke, files):
    push(invoke, "ci/build:v1", files / "summary.txt")
    result = invoke("latest", "ci/build", "-l", "run_id=none", "--json")
    assert result.exit_code == 1
    assert json_out(result) == {
        "error": {
            "code": "MANIFEST_UNKNOWN",
            "message": "manifest unknown to registry: ci/build (no artifact with run_id=none)",
        },
        "exit_code": 1,
    }
    assert result.stderr == ""


def test_unreachable_registry_exits_3():
    invoke = make_invoke({"ARCA_REGISTRY": "http://127.0.0.1:9"})
    result = invoke("ls", "ci/build", "--timeout", "2", "--json")
    assert result.exit_code == 3
    assert json_out(result)["error"]["code"] == "UNREACHABLE"


def test_server_failure_exits_3(monkeypatch):
    failing = httpx.MockTransport(
        lambda request: httpx.Response(
            503, json={"errors": [{"code": "UNAVAILABLE", "message": "s3 down"}]}
        )
    )
    monkeypatch.setattr(
        cli, "_client", lambda registry, timeout: ArcaClient("http://x", transport=failing)
    )
    result = make_invoke()("latest", "ci/build")
    assert result.exit_code == 3
    assert "s3 down" in result.stderr


def test_index_rebuild_works_offline_on_storage(invoke, files, storage):
    for i in range(3):
        push(invoke, f"ci/build:v{i}", files / "summary.txt", minute=i, labels=[f"run_id=r{i}"])
    push(invoke, "other:v1", files / "summary.txt")
    before = json_out(invoke("ls", "ci/build", "--json"))
    shutil.rmtree(storage / "repositories" / "ci" / "build" / "_index")
    assert json_out(invoke("ls", "ci/build", "--json"))["artifacts"] == []
    rebuilt = make_invoke()("index", "rebuild", "--storage", storage, "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json_out(rebuilt) == {
        "repositories": [
            {"name": "ci/build", "entries": 3, "removed": 0},
            {"name": "other", "entries": 1, "removed": 0},
        ]
    }
    assert json_out(invoke("ls", "ci/build", "--json")) == before
    one = make_invoke()("index", "rebuild", "--storage", storage, "--name", "other")
    assert one.exit_code == 0
    assert "other: 1 artifact indexed" in one.stdout


def test_index_rebuild_with_a_bad_config_exits_2(tmp_path):
    config = tmp_path / "arca.toml"
    config.write_text("[nope]\n")
    assert make_invoke()("index", "rebuild", "--config", config).exit_code == 2


def test_arca_registry_in_the_environment_is_not_a_server_setting(tmp_path):
    config = tmp_path / "arca.toml"
    config.write_text("[server]\nport = 5001\n")
    result = make_invoke({"ARCA_REGISTRY": "http://example:5000"})("check-config", config)
    assert result.exit_code == 0, result.output
    assert load_settings({"ARCA_REGISTRY": "http://example:5000"}).server.port == 5000


def test_help_lists_the_workflow_commands():
    result = make_invoke()("--help")
    for command in ("push", "pull", "ls", "latest", "verify", "rm", "show", "index", "serve"):
        assert command in result.stdout
