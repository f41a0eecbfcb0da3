"""CLI manners: HOST:PORT registries, help without Python types, plurals, quiet progress,
and errors in the registry's words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arca import cli
from tests.cli.conftest import json_out, make_invoke
from tests.e2e.server import ArcaServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("given", "plain", "url"),
    [
        ("127.0.0.1:5000", False, "http://127.0.0.1:5000"),
        ("localhost:5000", False, "http://localhost:5000"),
        ("[::1]:5000", False, "http://[::1]:5000"),
        ("127.0.0.1", False, "http://127.0.0.1"),
        ("registry.example.com:5000", False, "https://registry.example.com:5000"),
        ("registry.example.com", True, "http://registry.example.com"),
        ("10.0.0.7:5000", False, "https://10.0.0.7:5000"),
        ("http://registry.example.com", False, "http://registry.example.com"),
        ("https://127.0.0.1:5000", True, "https://127.0.0.1:5000"),
    ],
)
def test_a_registry_without_a_scheme_is_read_as_oras_and_skopeo_read_it(given, plain, url):
    assert cli._registry_url(given, plain) == url


def test_host_and_port_reach_a_real_server(server, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("ok\n")
    invoke = make_invoke()
    where = ["--registry", f"127.0.0.1:{server.port}"]
    pushed = invoke("push", "ci/b:v1", report, *where, "--json")
    assert pushed.exit_code == 0, pushed.output
    listed = invoke("ls", "ci/b", *where, "--json")
    assert json_out(listed)["artifacts"][0]["digest"] == json_out(pushed)["digest"]


COMMANDS = [
    ["push"], ["pull"], ["ls"], ["latest"], ["show"], ["verify"], ["rm"], ["tag"], ["untag"],
    ["referrers"], ["repos"], ["serve"], ["check-config"], ["index", "rebuild"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_no_python_type_names(command):
    result = make_invoke({"COLUMNS": "120"})(*command, "--help")
    assert result.exit_code == 0, result.output
    for python in ("<str>", "<bool>", "<int", "<float>", "<list", "<Path>", "{"):
        assert python not in result.stdout, (python, result.stdout)


def test_defaults_are_shown_in_help():
    text = make_invoke({"COLUMNS": "120"})("ls", "--help").stdout
    assert "[default: 100]" in text
    assert "[default: http://127.0.0.1:5000]" in text


def test_one_is_singular(invoke, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("ok\n")
    pushed = invoke("push", "ci/b:v1", report)
    assert "pushed 1 file (" in pushed.stderr
    pulled = invoke("pull", "ci/b:v1", "-o", tmp_path / "back")
    assert pulled.stderr.rstrip().endswith(": 1 file")
    assert "(3 blobs)" in invoke("verify", "ci/b:v1").stdout  # manifest, config, file
    assert "deleted 1 artifact\n" in invoke("rm", "ci/b:v1").stderr


def test_nothing_stray_on_stderr_when_it_is_not_a_terminal(invoke, tmp_path):
    """No progress bar, no hashing line: only the one summary line a script may log."""
    (tmp_path / "big.bin").write_bytes(b"x" * (3 << 20))
    pushed = invoke("push", "ci/b:v1", tmp_path / "big.bin")
    assert pushed.stderr.splitlines() == [
        "pushed 1 file (3.1 MB): 1 uploaded, 0 already there; tag v1"
    ]
    pulled = invoke("pull", "ci/b:v1", "-o", tmp_path / "back")
    assert len(pulled.stderr.splitlines()) == 1


def test_progress_labels_the_hashing_phase_on_a_terminal(monkeypatch):
    phases: list[str] = []

    class Recorder:
        def add_task(self, description: str, total: object) -> int:
            phases.append(description)
            return len(phases)

    bars = cli._Bars(Recorder())  # type: ignore[arg-type]
    bars.phase("hashing ci/b:v1")
    bars.phase("push ci/b")
    assert phases == ["hashing ci/b:v1", "push ci/b"]


def test_rm_of_a_missing_tag_says_manifest_unknown(invoke, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("ok\n")
    invoke("push", "ci/b:v1", report)
    human = invoke("rm", "ci/b:missing")
    assert human.exit_code == 1
    assert "manifest unknown" in human.stderr
    assert "Not Found" not in human.stderr
    as_json = json_out(invoke("rm", "ci/b:missing", "--json"))
    assert as_json["error"]["code"] == "MANIFEST_UNKNOWN"
    assert as_json["error"]["message"] == "manifest unknown to registry: ci/b:missing"
