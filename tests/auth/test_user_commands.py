"""`arca user add|remove|list` edit the htpasswd file a running server reads."""

from __future__ import annotations

from typer.testing import CliRunner

from arca import cli
from arca.auth.htpasswd import HtpasswdFile


def run(*args, input=None, env=None):
    return CliRunner().invoke(cli.app, [str(a) for a in args], input=input, env=env or {})


def test_add_list_remove_through_the_file_option(tmp_path):
    path = tmp_path / "htpasswd"
    result = run("user", "add", "alice", "--password-stdin", "-f", path, input="pw1\n")
    assert result.exit_code == 0, result.output
    assert run("user", "add", "bob", "--password-stdin", "-f", path, input="pw2\n").exit_code == 0
    listed = run("user", "list", "-f", path)
    assert listed.stdout.split() == ["alice", "bob"]
    assert HtpasswdFile(path).check("bob", "pw2")
    assert run("user", "remove", "bob", "-f", path).exit_code == 0
    assert run("user", "remove", "bob", "-f", path).exit_code == 1
    assert run("user", "list", "-f", path).stdout.split() == ["alice"]


def test_the_file_comes_from_the_configuration(tmp_path):
    path = tmp_path / "users"
    config = tmp_path / "arca.toml"
    config.write_text(f'[auth]\nhtpasswd = "{path}"\n')
    result = run("user", "add", "carol", "--password-stdin", "--config", config, input="pw\n")
    assert result.exit_code == 0, result.output
    assert HtpasswdFile(path).check("carol", "pw")


def test_without_a_file_or_configuration_it_says_which_is_missing(tmp_path):
    result = run("user", "list")
    assert result.exit_code == 2
    assert "htpasswd" in result.output


def test_a_name_the_file_cannot_hold_is_refused(tmp_path):
    path = tmp_path / "htpasswd"
    result = run("user", "add", "a:b", "--password-stdin", "-f", path, input="pw\n")
    assert result.exit_code == 2
    assert not path.exists()
    assert run("user", "add", "x", "--password-stdin", "-f", path, input="\n").exit_code == 2
