"""`--label` on the command line: every key once, valid, or a usage error before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import json_out


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text("ok\n")
    return path


def test_rm_with_a_repeated_label_key_deletes_nothing_and_is_a_usage_error(invoke, report):
    for run in ("1", "2"):
        pushed = invoke("push", f"ci/build:r{run}", report, "-l", f"run_id={run}", "--json")
        assert pushed.exit_code == 0, pushed.output
    result = invoke("rm", "ci/build", "-l", "run_id=1", "-l", "run_id=2")
    assert result.exit_code == 2
    assert "'run_id' is given twice" in result.output
    left = json_out(invoke("ls", "ci/build", "--json"))
    assert sorted(a["labels"]["run_id"] for a in left["artifacts"]) == ["1", "2"]


def test_push_with_a_repeated_label_key_is_refused_not_collapsed(invoke, report):
    result = invoke("push", "ci/build:v1", report, "-l", "k=1", "-l", "k=2")
    assert result.exit_code == 2
    assert "'k' is given twice ('1' and '2')" in result.output
    assert invoke("show", "ci/build:v1").exit_code == 1  # nothing was pushed


def test_the_same_key_with_the_same_value_twice_is_refused_too(invoke, report):
    assert invoke("ls", "ci/build", "-l", "k=1", "-l", "k=1").exit_code == 2


def test_an_invalid_label_key_is_named_as_such(invoke, report):
    result = invoke("push", "ci/build:v1", report, "-l", "bad key=1")
    assert result.exit_code == 2
    assert "invalid label key 'bad key'" in result.output


def test_a_value_may_hold_equals_signs(invoke, report):
    pushed = invoke("push", "ci/build:v1", report, "-l", "query=a=b", "--json")
    assert pushed.exit_code == 0, pushed.output
    assert json_out(pushed)["labels"] == {"query": "a=b"}
