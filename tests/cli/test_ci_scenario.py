"""A CI pipeline's view of arca, against a real server and the real `arca` command.

Fifty runs of two templates are pushed with labels; then, as a CI script would, `arca`
runs as a process: list by template, take the latest, verify, see verification
fail once a stored blob is corrupted on disk, and remove exactly one run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import json_out, make_invoke
from tests.e2e.server import ArcaServer

RUNS = 50
BASE = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
REPOSITORY = "ci/nightly"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()


def arca(server: ArcaServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m arca …` as its own process, as a CI job runs it."""
    return subprocess.run(
        [sys.executable, "-m", "arca", *args],
        env={**os.environ, "ARCA_REGISTRY": server.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def arca_json(server: ArcaServer, *args: str, code: int = 0) -> Any:
    done = arca(server, *args, "--json")
    assert done.returncode == code, done.stdout + done.stderr
    return json.loads(done.stdout)


def template(run: int) -> str:
    return "at_risk" if run % 2 == 0 else "churn"


def push_runs(server: ArcaServer, work: Path) -> dict[str, dict[str, Any]]:
    """Each run's report, pushed with its labels; in-process (the push path is the same)."""
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    pushed = {}
    for run in range(RUNS):
        run_id = f"run-{run:03d}"
        report = work / run_id / "report.json"
        report.parent.mkdir(parents=True)
        report.write_text(json.dumps({"run_id": run_id, "at_risk": run * 3}))
        result = invoke(
            "push",
            f"{REPOSITORY}:{run_id}",
            report,
            "--label",
            f"run_id={run_id}",
            "--label",
            f"template_id={template(run)}",
            "--created",
            (BASE + timedelta(minutes=run)).isoformat(),
            "--json",
        )
        assert result.exit_code == 0, result.output
        pushed[run_id] = json_out(result)
    return pushed


def test_fifty_runs_listed_latest_verified_corrupted_and_one_removed(server, tmp_path):
    pushed = push_runs(server, tmp_path / "work")

    listed = arca_json(server, "ls", REPOSITORY, "--label", "template_id=at_risk")
    at_risk = [f"run-{run:03d}" for run in reversed(range(RUNS)) if template(run) == "at_risk"]
    assert [a["version"] for a in listed["artifacts"]] == at_risk
    assert len(listed["artifacts"]) == RUNS // 2
    assert all(a["labels"]["template_id"] == "at_risk" for a in listed["artifacts"])
    created = [a["created"] for a in listed["artifacts"]]
    assert created == sorted(created, reverse=True)

    latest = arca_json(server, "latest", REPOSITORY, "--label", "template_id=at_risk")
    assert latest["digest"] == pushed["run-048"]["digest"]
    assert latest["tags"] == ["run-048"]

    verified = arca(server, "verify", f"{REPOSITORY}:run-048")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok ")

    sha256 = pushed["run-048"]["files"][0]["sha256"]
    blob = server.storage / "blobs" / "sha256" / sha256[7:9] / sha256[7:] / "data"
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b"run-048", b"run-999"))  # same size, other bytes
    found = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    failed = arca(server, "verify", f"{REPOSITORY}:run-048")
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout
    assert f"report.json: sha256: expected {sha256}, found {found}" in failed.stdout
    assert "report.json: blake3: expected blake3:" in failed.stdout
    report = arca_json(server, "verify", REPOSITORY, "--label", "template_id=at_risk", code=1)
    failing = [
        (r["digest"], c["path"]) for r in report["results"] for c in r["checks"] if not c["ok"]
    ]
    assert failing == [(pushed["run-048"]["digest"], "report.json")]
    assert arca(server, "verify", REPOSITORY, "--label", "template_id=churn").returncode == 0

    removed = arca_json(server, "rm", REPOSITORY, "--label", "run_id=run-010")
    assert removed["deleted"] == [pushed["run-010"]["digest"]]
    remaining = arca_json(server, "ls", REPOSITORY, "--limit", "1000")["artifacts"]
    assert len(remaining) == RUNS - 1
    assert {a["digest"] for a in remaining} == {
        p["digest"] for run_id, p in pushed.items() if run_id != "run-010"
    }
    gone = arca_json(server, "latest", REPOSITORY, "--label", "run_id=run-010", code=1)
    assert gone["error"]["code"] == "MANIFEST_UNKNOWN"
