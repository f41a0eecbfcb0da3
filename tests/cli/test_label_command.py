"""`arca label`: a run's status set after its push changes what `latest --label
status=pass` and `ls --label` find, keeps the digest, and survives `arca index rebuild`."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Invoke, json_out


def push(invoke: Invoke, tmp_path: Path, tag: str, *labels: str, created: str | None = None) -> str:
    build = tmp_path / f"build-{tag}"
    build.mkdir()
    (build / "report.txt").write_text(f"report of {tag}")
    flags = [part for label in labels for part in ("-l", label)]
    if created is not None:  # times are whole seconds: same-second runs sort by digest
        flags += ["--created", created]
    result = invoke("push", f"ci/runs:{tag}", build, *flags, "--json")
    assert result.exit_code == 0, result.output
    digest: str = json_out(result)["digest"]
    return digest


def latest(invoke: Invoke, *labels: str) -> str | None:
    flags = [part for label in labels for part in ("--label", label)]
    result = invoke("latest", "ci/runs", *flags, "--json")
    if result.exit_code != 0:
        return None
    digest: str = json_out(result)["digest"]
    return digest


def test_labelling_a_run_pass_makes_it_the_latest_pass(invoke, tmp_path, storage):
    first = push(
        invoke, tmp_path, "run-1", "family=a", "status=pass", created="2026-11-01T10:00:00"
    )
    second = push(
        invoke, tmp_path, "run-2", "family=a", "status=fail", created="2026-11-01T10:00:01"
    )
    assert latest(invoke, "status=pass") == first

    result = invoke("label", "ci/runs:run-2", "status=pass", "verified_by=nightly", "--json")
    assert result.exit_code == 0, result.output
    answer = json_out(result)
    assert answer["digest"] == second  # the artifact keeps its digest
    assert answer["labels"] == {"family": "a", "status": "pass", "verified_by": "nightly"}
    assert latest(invoke, "status=pass") == second
    assert latest(invoke, "status=fail") is None

    record = json_out(invoke("show", "ci/runs:run-2", "--json"))
    assert record["digest"] == second
    assert record["labels"]["status"] == "pass"
    assert record["pushed_labels"]["status"] == "fail"
    listed = json_out(invoke("ls", "ci/runs", "--label", "verified_by=nightly", "--json"))
    assert [item["digest"] for item in listed["artifacts"]] == [second]
    # The label artifact is no run of its own.
    every = json_out(invoke("ls", "ci/runs", "--json"))
    assert sorted(item["digest"] for item in every["artifacts"]) == sorted([first, second])

    rebuilt = invoke("index", "rebuild", "--storage", storage, "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert latest(invoke, "status=pass") == second
    assert latest(invoke, "verified_by=nightly") == second


def test_the_newest_label_change_wins_and_remove_takes_a_label_away(invoke, tmp_path, storage):
    digest = push(invoke, tmp_path, "run-1", "status=fail", "owner=ci")
    assert invoke("label", "ci/runs:run-1", "status=pass").exit_code == 0
    assert invoke("label", f"ci/runs@{digest}", "status=flaky", "--remove", "owner").exit_code == 0
    record = json_out(invoke("show", "ci/runs:run-1", "--json"))
    assert record["labels"] == {"status": "flaky"}
    assert latest(invoke, "status=flaky") == digest
    assert latest(invoke, "owner=ci") is None
    assert invoke("index", "rebuild", "--storage", storage).exit_code == 0
    assert json_out(invoke("show", "ci/runs:run-1", "--json"))["labels"] == {"status": "flaky"}


def test_label_refuses_bad_keys_and_empty_changes(invoke, tmp_path):
    push(invoke, tmp_path, "run-1", "status=fail")
    assert invoke("label", "ci/runs:run-1").exit_code == 2
    assert invoke("label", "ci/runs:run-1", "bad key=x").exit_code == 2
    assert invoke("label", "ci/runs:run-1", "a=1", "--remove", "a").exit_code == 2
    missing = invoke("label", "ci/runs:nope", "status=pass", "--json")
    assert missing.exit_code != 0
    assert "MANIFEST_UNKNOWN" in missing.output
