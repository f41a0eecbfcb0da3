"""`arca retention plan|apply`, `arca pin`, `arca pins` and the pin mark of `arca ls`;
`plan --json` validates against docs/retention-plan.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from arca.lifecycle.plan_schema import PLAN_SCHEMA
from tests.cli.conftest import json_out
from tests.cli.test_listing import push

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "retention-plan.schema.json"


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text("ok\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "arca.toml"
    path.write_text(
        "[retention]\nmax_delete_fraction = 0.9\n\n"
        "[[retention.policies]]\n"
        'name = "ci"\n'
        'repositories = ["ci/**"]\n'
        'group_by = ["family"]\n'
        "keep_last = 1\n"
        'keep_latest_with = [{status = "pass"}]\n'
    )
    return path


def test_the_docs_schema_is_the_one_arca_ships() -> None:
    assert json.loads(SCHEMA.read_text()) == PLAN_SCHEMA, (
        "regenerate: python -m arca.lifecycle.plan_schema > docs/retention-plan.schema.json"
    )


def test_plan_json_validates_and_apply_deletes_it_after_a_dry_run(
    invoke, report, config, storage, tmp_path
) -> None:
    old = push(invoke, "ci/b:r1", report, 1, "family=b", "status=fail")
    passed = push(invoke, "ci/b:r2", report, 2, "family=b", "status=pass")
    middle = push(invoke, "ci/b:r3", report, 3, "family=b", "status=fail")
    newest = push(invoke, "ci/b:r4", report, 4, "family=b", "status=fail")
    other = push(invoke, "ci/c:r1", report, 1, "family=c")
    where = ("--storage", str(storage), "--config", str(config))

    planned = invoke("retention", "plan", *where, "--json")
    assert planned.exit_code == 0, planned.output
    document = json_out(planned)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)
    actions = {a["digest"]: a["action"] for r in document["repositories"] for a in r["artifacts"]}
    assert actions == {
        old["digest"]: "delete",
        passed["digest"]: "keep",
        middle["digest"]: "delete",
        newest["digest"]: "keep",
        other["digest"]: "keep",
    }
    text = invoke("retention", "plan", *where, "--repository", "ci/b")
    assert text.exit_code == 0, text.output
    assert "keep_latest_with: newest with status=pass in family=b" in text.stdout
    assert "safety: 0 pinned, 1 last-pass, 0 last-run kept" in text.stdout
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(planned.stdout)

    # Pinned after the plan: the apply keeps it and says so.
    pinned = invoke("pin", "ci/b:r3", "--reason", "bisecting")
    assert pinned.exit_code == 0, pinned.output
    assert pinned.stdout.strip() == "pinned ci/b:r3"
    listed = json_out(invoke("pins", "--json"))["pins"]
    assert [(p["name"], p["reference"], p["reason"]) for p in listed] == [
        ("ci/b", "r3", "bisecting")
    ]
    ls = invoke("ls", "ci/b")
    assert "pin: pinned (arca pins)" in ls.stdout

    dry = invoke("retention", "apply", *where, "--plan", str(plan_file))
    assert dry.exit_code == 0, dry.output
    assert f"would delete ci/b@{old['digest']}" in dry.stdout
    assert f"kept ci/b@{middle['digest']}: pinned since the plan" in dry.stdout
    assert invoke("ls", "ci/b", "--json").exit_code == 0
    assert json_out(invoke("ls", "ci/b", "--json"))["count"] == 4  # a dry run changes nothing

    real = invoke("retention", "apply", *where, "--plan", str(plan_file), "--yes", "--json")
    assert real.exit_code == 0, real.output
    outcome = {o["digest"]: o["outcome"] for o in json_out(real)["outcomes"]}
    assert outcome == {old["digest"]: "deleted", middle["digest"]: "kept"}
    left = [a["digest"] for a in json_out(invoke("ls", "ci/b", "--json"))["artifacts"]]
    assert left == [newest["digest"], middle["digest"], passed["digest"]]

    unpinned = invoke("pin", "ci/b:r3", "--off")
    assert unpinned.stdout.strip() == "unpinned ci/b:r3"
    missing = invoke("pin", "ci/b:r3", "--off")
    assert missing.exit_code == 1


def test_bad_policies_are_refused_at_load_with_the_key_named(tmp_path, storage) -> None:
    from tests.cli.conftest import make_invoke

    invoke = make_invoke()
    cases = {
        'keep_tags = ["("]': "keep_tags: '(' is not a regex",
        "keep_last = -1": "keep_last must be an integer >= 0",
        "keep_forever = true": "unknown key(s) in retention.policies[0]",
        'untagged = "delete"': "keeps nothing",
    }
    for line, message in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(f'[[retention.policies]]\nrepositories = ["a/**"]\n{line}\n')
        result = invoke("check-config", str(path))
        assert result.exit_code == 2, (line, result.output)
        assert message in result.output, (line, result.output)
        planned = invoke("retention", "plan", "--storage", str(storage), "--config", str(path))
        assert planned.exit_code == 2
