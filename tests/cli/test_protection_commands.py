"""The CLI under `[[immutability]]` and `[[quotas]]`: `arca tag --force`, `arca untag` and
`arca rm` are refused with the rule's message; `arca quota` shows usage against limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from arca import cli
from arca.app import create_app
from arca.client.sync import ArcaClient
from arca.config import ImmutabilityRule, QuotaRule, Settings
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.cli.conftest import Invoke, json_out, make_invoke

SETTINGS = Settings(
    immutability=(ImmutabilityRule(("rel/**",), ("^v",), "releases"),),
    quotas=(QuotaRule(("rel/*",), max_bytes=10_000_000, max_artifacts=5, name="rel"),),
)


@pytest.fixture
def invoke(storage: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    app = create_app(SETTINGS, FilesystemDriver(str(storage)))
    transport = httpx.ASGITransport(app=app)
    monkeypatch.setattr(
        cli,
        "_client",
        lambda registry, timeout: ArcaClient("http://arca.test", transport=transport),
    )
    return make_invoke()


def push(invoke: Invoke, tmp_path: Path, reference: str, text: str) -> str:
    build = tmp_path / f"build-{text}"
    build.mkdir()
    (build / "out.txt").write_text(text)
    result = invoke("push", reference, build, "--json")
    assert result.exit_code == 0, result.output
    digest: str = json_out(result)["digest"]
    return digest


def refused(result, rule: str) -> None:
    assert result.exit_code != 0, result.output
    assert "DENIED" in result.output
    assert rule in result.output


def test_tag_untag_and_rm_cannot_move_or_remove_an_immutable_tag(invoke, tmp_path):
    first = push(invoke, tmp_path, "rel/app:v1", "one")
    second = push(invoke, tmp_path, "rel/app:build-2", "two")
    refused(invoke("tag", "rel/app:build-2", "v1", "--force", "--json"), "releases")
    refused(invoke("untag", "rel/app:v1", "--json"), "releases")
    refused(invoke("rm", f"rel/app@{first}", "--json"), "releases")
    refused(invoke("rm", "rel/app:v1", "--json"), "releases")
    refused(invoke("push", "rel/app:v1", tmp_path / "build-two", "--force", "--json"), "releases")
    assert json_out(invoke("show", "rel/app:v1", "--json"))["digest"] == first
    # Tags no rule names still move, and a tag is created once.
    assert invoke("tag", "rel/app:build-2", "latest", "v2").exit_code == 0
    assert json_out(invoke("show", "rel/app:v2", "--json"))["digest"] == second


def test_quota_shows_usage_against_the_limits(invoke, tmp_path, storage, monkeypatch):
    push(invoke, tmp_path, "rel/app:v1", "one")
    config = tmp_path / "arca.toml"
    config.write_text(
        '[[quotas]]\nname = "rel"\nrepositories = ["rel/*"]\n'
        "max_bytes = 10000000\nmax_artifacts = 5\n"
    )
    result = make_invoke()("quota", "--storage", storage, "--config", config, "--json")
    assert result.exit_code == 0, result.output
    (row,) = json_out(result)["items"]
    assert row["repository"] == "rel/app"
    assert row["rule"] == "rel"
    assert row["artifacts"] == 1
    assert row["max_artifacts"] == 5
    assert 0 < row["bytes"] < 10_000
    table = make_invoke()("quota", "--storage", storage, "--config", config)
    assert "1 of 5 (20%)" in table.output


def test_quota_without_rules_says_so(tmp_path, storage):
    result = make_invoke()("quota", "--storage", storage)
    assert result.exit_code == 2
    assert "no [[quotas]]" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[immutability]]\nrepositories = ["a"]\ntags = ["(v"]\n', "not a regular expression"),
        ('[[quotas]]\nrepositories = ["a"]\nmax_bytes = -5\n', "quotas[0].max_bytes"),
        ("[protection]\nusage_cache_seconds = nan\n", "protection.usage_cache_seconds"),
        ('[[quotas]]\nrepositories = ["a//b"]\nmax_artifacts = 1\n', "cannot match"),
    ],
)
def test_check_config_refuses_a_hostile_protection_config(tmp_path, text, message):
    path = tmp_path / "arca.toml"
    path.write_text(text)
    result = make_invoke()("check-config", path)
    assert result.exit_code == 2, result.output
    assert message in result.output
