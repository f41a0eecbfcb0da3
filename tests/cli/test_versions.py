"""Ids and versions without shell: generated tags, no silent tag overwrite, short digests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import json_out


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_text('{"rows": 3}\n')
    return path


def push(invoke, *args):
    result = invoke("push", *args, "--json")
    assert result.exit_code == 0, result.output
    return json_out(result)


def test_a_push_without_a_tag_gets_a_sortable_unique_tag_named_after_its_template(invoke, report):
    first = push(
        invoke,
        "q/cache",
        report,
        "-l",
        "template_id=at risk/v2",
        "--created",
        "2026-06-01T02:00:00Z",
    )
    [tag] = first["tags"]
    assert re.fullmatch(r"at-risk-v2-20260601T020000Z-[0-9a-f]{12}", tag)
    assert tag.endswith(first["digest"].removeprefix("sha256:")[:12])
    shown = json_out(invoke("show", f"q/cache:{tag}", "--json"))
    assert shown["digest"] == first["digest"]
    later = push(
        invoke,
        "q/cache",
        report,
        "-l",
        "template_id=at risk/v2",
        "--created",
        "2026-06-01T03:00:00Z",
    )
    assert sorted([later["tags"][0], tag]) == [tag, later["tags"][0]]  # time order is tag order


def test_without_a_template_the_tag_is_time_and_digest(invoke, report):
    pushed = push(invoke, "q/cache", report, "--created", "2026-06-01T02:00:00Z")
    assert re.fullmatch(r"20260601T020000Z-[0-9a-f]{12}", pushed["tags"][0])


def test_pushing_another_artifact_to_an_existing_tag_is_refused_unless_forced(
    invoke, report, tmp_path
):
    first = push(invoke, "q/cache:v1", report, "--created", "2026-06-01T02:00:00Z")
    other = tmp_path / "other.json"
    other.write_text("{}\n")
    refused = invoke("push", "q/cache:v1", other, "--json")
    assert refused.exit_code == 2
    error = json_out(refused)["error"]
    assert error["code"] == "TAG_EXISTS"
    assert f"already names {first['digest']}" in error["message"]
    assert json_out(invoke("show", "q/cache:v1", "--json"))["digest"] == first["digest"]
    # The same artifact again is no overwrite.
    again = push(invoke, "q/cache:v1", report, "--created", "2026-06-01T02:00:00Z")
    assert again["digest"] == first["digest"]
    forced = push(invoke, "q/cache:v1", other, "--force")
    assert json_out(invoke("show", "q/cache:v1", "--json"))["digest"] == forced["digest"]


def test_an_extra_tag_is_checked_too(invoke, report, tmp_path):
    push(invoke, "q/cache:v1", report)
    other = tmp_path / "other.json"
    other.write_text("{}\n")
    assert invoke("push", "q/cache:v2", other, "--tag", "v1").exit_code == 2
    assert invoke("show", "q/cache:v2").exit_code == 1  # nothing was pushed


def test_short_digests_as_ls_prints_them_resolve(invoke, report, tmp_path):
    pushed = push(invoke, "q/cache:v1", report)
    short = pushed["digest"].removeprefix("sha256:")[:12]
    listed = invoke("ls", "q/cache")
    assert short in listed.stdout
    assert json_out(invoke("show", f"q/cache@{short}", "--json"))["digest"] == pushed["digest"]
    assert invoke("verify", f"q/cache@{short}").exit_code == 0
    pulled = invoke("pull", f"q/cache@sha256:{short}", "-o", tmp_path / "back", "--json")
    assert json_out(pulled)["digest"] == pushed["digest"]
    missing = invoke("show", "q/cache@0000aaaa", "--json")
    assert missing.exit_code == 1
    assert json_out(missing)["error"]["code"] == "MANIFEST_UNKNOWN"
    assert invoke("rm", f"q/cache@{short}").exit_code == 0
    assert invoke("show", "q/cache:v1").exit_code == 1


def test_a_prefix_too_short_or_not_hex_is_a_usage_error(invoke, report):
    push(invoke, "q/cache:v1", report)
    assert invoke("show", "q/cache@abc").exit_code == 2
    assert invoke("show", "q/cache@xyz123").exit_code == 2


def test_pull_to_stdout_writes_one_files_bytes(invoke, report, tmp_path):
    push(invoke, "q/cache:v1", report)
    one = invoke("pull", "q/cache:v1", "--stdout")
    assert one.exit_code == 0, one.output
    assert one.stdout_bytes == b'{"rows": 3}\n'
    (tmp_path / "b.txt").write_text("b")
    push(invoke, "q/cache:v2", report, tmp_path / "b.txt")
    many = invoke("pull", "q/cache:v2", "--stdout")
    assert many.exit_code == 2
    assert "has 2 files; name one" in many.stderr
    chosen = invoke("pull", "q/cache:v2", "--stdout", "--path", "b.txt")
    assert chosen.stdout_bytes == b"b"
    assert invoke("pull", "q/cache:v2", "--stdout", "--json").exit_code == 2
