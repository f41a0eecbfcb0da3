"""Listing people can use: totals, marks, files, repositories, tags, time ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import json_out


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text("ok\n")
    return path


def push(invoke, target, path, hour, *labels):
    args = [a for label in labels for a in ("-l", label)]
    result = invoke(
        "push", target, path, *args, "--created", f"2026-06-01T{hour:02d}:00:00Z", "--json"
    )
    assert result.exit_code == 0, result.output
    return json_out(result)


def test_ls_shows_totals_and_marks_the_last_run_and_the_last_pass(invoke, report):
    push(invoke, "ci/b:r1", report, 1, "status=pass")
    passed = push(invoke, "ci/b:r2", report, 2, "status=pass")
    newest = push(invoke, "ci/b:r3", report, 3, "status=fail")
    result = invoke("ls", "ci/b")
    lines = result.stdout.splitlines()
    assert lines[0].split()[-1] == "MARK"
    row = {line.split()[2]: line for line in lines[1:4]}  # by digest column
    assert row[newest["digest"][7:19]].rstrip().endswith("run")
    assert row[passed["digest"][7:19]].rstrip().endswith("pass")
    assert lines[4] == "3 artifacts, 9 bytes; run: last run; pass: last pass (status=pass)"
    listed = json_out(invoke("ls", "ci/b", "--json"))
    assert (listed["count"], listed["size"]) == (3, 9)
    assert [a["marks"] for a in listed["artifacts"]] == [["run"], ["pass"], []]
    one = invoke("ls", "ci/b", "--limit", "1")
    assert "1 artifact, 3 bytes on this page" in one.stdout


def test_ls_verbose_lists_each_artifacts_files(invoke, tmp_path):
    tree = tmp_path / "out"
    (tree / "logs").mkdir(parents=True)
    (tree / "logs" / "run.log").write_text("x")
    (tree / "summary.md").write_text("# ok")
    push(invoke, "ci/b:r1", tree, 1)
    result = invoke("ls", "ci/b", "--verbose")
    assert "logs/run.log" in result.stdout
    assert "text/markdown" in result.stdout
    files = json_out(invoke("ls", "ci/b", "-v", "--json"))["artifacts"][0]["files"]
    assert [f["path"] for f in files] == ["logs/run.log", "summary.md"]


def test_repos_lists_the_catalog(invoke, report):
    push(invoke, "ci/b:r1", report, 1)
    push(invoke, "team/app:r1", report, 1)
    assert json_out(invoke("repos", "--json")) == {"repositories": ["ci/b", "team/app"]}
    human = invoke("repos")
    assert human.stdout.splitlines() == ["ci/b", "team/app"]
    assert "2 repositories" in human.stderr


def test_tag_adds_a_tag_and_untag_removes_only_the_tag(invoke, report):
    first = push(invoke, "ci/b:r1", report, 1)
    tagged = invoke("tag", "ci/b:r1", "stable", "prod", "--json")
    assert tagged.exit_code == 0, tagged.output
    for tag in ("stable", "prod"):
        assert json_out(invoke("show", f"ci/b:{tag}", "--json"))["digest"] == first["digest"]
    other = push(invoke, "ci/b:r2", report, 2, "k=v")
    refused = invoke("tag", "ci/b:r2", "stable", "--json")
    assert refused.exit_code == 2
    assert json_out(refused)["error"]["code"] == "TAG_EXISTS"
    assert invoke("tag", "ci/b:r2", "stable", "--force").exit_code == 0
    assert json_out(invoke("show", "ci/b:stable", "--json"))["digest"] == other["digest"]
    removed = invoke("untag", "ci/b:prod")
    assert removed.exit_code == 0, removed.output
    assert invoke("show", "ci/b:prod").exit_code == 1
    record = json_out(invoke("show", f"ci/b@{first['digest']}", "--json"))
    assert record["tags"] == ["r1"]  # the artifact and its other tag stay
    assert invoke("untag", f"ci/b@{first['digest']}").exit_code == 2


def test_rm_help_says_it_deletes_the_manifest_and_points_at_untag(invoke):
    text = " ".join(invoke("rm", "--help").stdout.split())
    assert "the manifest and every tag on it" in text
    assert "arca untag" in text


def test_since_and_until_select_by_creation_time(invoke, report):
    for hour in (1, 2, 3, 4):
        push(invoke, f"ci/b:r{hour}", report, hour, f"hour={hour}", "t=x")
    window = ["--since", "2026-06-01T02:00:00Z", "--until", "2026-06-01T03:00:00"]
    listed = json_out(invoke("ls", "ci/b", *window, "--json"))
    assert [a["labels"]["hour"] for a in listed["artifacts"]] == ["3", "2"]
    labelled = json_out(invoke("ls", "ci/b", "-l", "t=x", *window, "--json"))
    assert [a["labels"]["hour"] for a in labelled["artifacts"]] == ["3", "2"]
    latest = json_out(invoke("latest", "ci/b", "--until", "2026-06-01T02:30:00Z", "--json"))
    assert latest["labels"]["hour"] == "2"
    paged = json_out(
        invoke("ls", "ci/b", "--since", "2026-06-01T02:00:00Z", "--limit", "1", "--json")
    )
    rest = json_out(
        invoke(
            "ls", "ci/b", "--since", "2026-06-01T02:00:00Z", "--cursor", paged["cursor"], "--json"
        )
    )
    assert [a["labels"]["hour"] for a in rest["artifacts"]] == ["3", "2"]
    deleted = json_out(
        invoke("rm", "ci/b", "-l", "t=x", "--until", "2026-06-01T01:59:59Z", "--json")
    )
    assert len(deleted["deleted"]) == 1
    assert len(json_out(invoke("ls", "ci/b", "--json"))["artifacts"]) == 3
    assert json_out(invoke("ls", "ci/b", "--since", "100000w", "--json"))["count"] == 3
    assert json_out(invoke("ls", "ci/b", "--since", "1s", "--json"))["count"] == 0
    assert invoke("ls", "ci/b", "--since", "soon").exit_code == 2
