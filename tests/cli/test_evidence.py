"""Evidence and types: reports attached to a run with --subject, found with `arca referrers`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import json_out

VERDICT = "application/vnd.example.verdict+json"


@pytest.fixture
def run(invoke, tmp_path: Path) -> dict:
    output = tmp_path / "model.onnx"
    output.write_bytes(b"onnx")
    pushed = invoke("push", "ml/model:run-1", output, "--json")
    assert pushed.exit_code == 0, pushed.output
    return json_out(pushed)


def test_a_report_pushed_with_a_subject_is_listed_among_its_referrers(invoke, run, tmp_path):
    verdict = tmp_path / "verdict.json"
    verdict.write_text('{"ok": true}')
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text("{}")
    subject = f"ml/model@{run['digest']}"
    attached = invoke(
        "push", "ml/model:verdict-1", verdict, "--subject", subject,
        "--artifact-type", VERDICT, "-l", "status=pass", "--json",
    )  # fmt: skip
    assert attached.exit_code == 0, attached.output
    short = run["digest"].removeprefix("sha256:")[:12]
    other = invoke(
        "push", "ml/model:sbom-1", f"{sbom}:application/spdx+json", "--subject", f"@{short}",
        "--artifact-type", "application/spdx+json", "--json",
    )  # fmt: skip
    assert other.exit_code == 0, other.output
    found = json_out(invoke("referrers", subject, "--json"))
    assert {r["artifact_type"] for r in found["referrers"]} == {VERDICT, "application/spdx+json"}
    only = json_out(invoke("referrers", "ml/model:run-1", "--artifact-type", VERDICT, "--json"))
    [verdict_ref] = only["referrers"]
    assert verdict_ref["digest"] == json_out(attached)["digest"]
    assert verdict_ref["annotations"]["dev.arca.label.status"] == "pass"
    human = invoke("referrers", subject)
    assert "application/spdx+json" in human.stdout
    assert "2 referrers of ml/model@" in human.stderr
    shown = json_out(invoke("show", "ml/model:sbom-1", "--json"))
    assert shown["files"][0]["media_type"] == "application/spdx+json"
    assert shown["artifact_type"] == "application/spdx+json"
    assert shown["subject"]["digest"] == run["digest"]


def test_a_subject_in_another_repository_is_refused(invoke, run, tmp_path):
    verdict = tmp_path / "verdict.json"
    verdict.write_text("{}")
    result = invoke("push", "other/repo:v1", verdict, "--subject", f"ml/model@{run['digest']}")
    assert result.exit_code == 2
    assert "another repository" in result.output


def test_a_missing_subject_is_not_found(invoke, run, tmp_path):
    verdict = tmp_path / "verdict.json"
    verdict.write_text("{}")
    result = invoke("push", "ml/model:v", verdict, "--subject", "ml/model:nope", "--json")
    assert result.exit_code == 1
    assert json_out(result)["error"]["code"] == "MANIFEST_UNKNOWN"


def test_file_colon_type_sets_a_media_type_and_a_bad_one_is_refused(invoke, tmp_path):
    table = tmp_path / "rows.bin"
    table.write_bytes(b"PAR1")
    pushed = invoke("push", "d/t:v1", f"{table}:application/vnd.apache.parquet", "--json")
    assert pushed.exit_code == 0, pushed.output
    assert json_out(pushed)["files"][0]["media_type"] == "application/vnd.apache.parquet"
    assert invoke("push", "d/t:v2", f"{table}:not a type").exit_code == 2
