"""Every configuration arca cannot use is one line naming the key, and exit 2.

`arca check-config` and `arca serve` (before it binds) refuse the same configs the same
way, from a real process: what a person at a terminal sees, never a traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

S3 = '[storage]\ndriver = "s3"\n'
BAD_CONFIGS = [
    pytest.param(S3 + '[storage.s3]\nbuckt = "x"\n', "storage.s3.buckt", id="misspelt-s3-key"),
    pytest.param(S3, "storage.s3.bucket is required", id="s3-without-bucket"),
    pytest.param('[server]\nlog_level = "verbose"\n', "server.log_level", id="log-level"),
    pytest.param("[server]\nport = 99999\n", "server.port", id="port-too-big"),
    pytest.param("[server]\nport = 0\n", "server.port", id="port-zero"),
    pytest.param('[server]\nport = "5000"\n', "server.port", id="port-a-string"),
    pytest.param("[server]\nworkers = 0\n", "server.workers", id="no-workers"),
    pytest.param("[limits]\nmanifest_max_bytes = -1\n", "limits.manifest_max_bytes", id="limit"),
    pytest.param("[limits]\ntags_page_size = 0\n", "limits.tags_page_size", id="page-size"),
    pytest.param('[server]\nlog_format = "xml"\n', "server.log_format", id="log-format"),
    pytest.param('[server]\naccess_log = "yes"\n', "server.access_log", id="access-log"),
    pytest.param('[server]\npublic_url = "r.example"\n', "server.public_url", id="public-url"),
    pytest.param('[server]\nhost = ""\n', "server.host", id="empty-host"),
    pytest.param("[server]\nprot = 1\n", "prot", id="unknown-key"),
    pytest.param("[sever]\n", "sever", id="unknown-section"),
    pytest.param("[server\n", "not valid TOML", id="toml-syntax"),
    pytest.param('[storage]\ndriver = "ftp"\n', "storage.driver", id="unknown-driver"),
    pytest.param(
        S3 + '[storage.s3]\nbucket = "b"\npart_size = 1\n', "storage.s3.part_size", id="part-size"
    ),
    pytest.param(
        S3 + '[storage.s3]\nbucket = "b"\nendpoint_url = "127.0.0.1:9000"\n',
        "storage.s3.endpoint_url",
        id="endpoint-not-a-url",
    ),
    pytest.param(
        S3 + '[storage.s3]\nbucket = "b"\naccess_key_id = "k"\n',
        "storage.s3.access_key_id",
        id="key-without-secret",
    ),
    pytest.param(
        "[storage.filesystem]\nfsync = 1\n", "storage.filesystem.fsync", id="fsync-not-a-bool"
    ),
    pytest.param("[storage]\ns3 = 1\n", "[storage.s3] must be a table", id="table-not-a-table"),
    pytest.param(
        '[server]\ntls_cert = "/nonexistent/cert.pem"\ntls_key = "/nonexistent/key.pem"\n',
        "server.tls_cert",
        id="tls-file-missing",
    ),
    pytest.param('[storage]\ndriver = "gcs"\n', "storage.gcs.bucket is required", id="gcs-bucket"),
    pytest.param(
        '[storage]\ndriver = "azure"\n[storage.azure]\ncontainer = "c"\n',
        "storage.azure.connection_string",
        id="azure-credentials",
    ),
]


# The ones the issue names: `serve` is checked on these (each run costs a process start).
SERVE_CHECKED = {
    "misspelt-s3-key", "s3-without-bucket", "log-level", "port-too-big", "no-workers", "limit",
    "endpoint-not-a-url",
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def arca(*args: str, env: dict[str, str] | None = None, prelude: str = "") -> tuple[int, str]:
    """Run `arca ARGS` in a fresh process; its exit code and stderr."""
    code = f"{prelude}\nimport sys\nfrom arca.cli import main\nsys.argv[0] = 'arca'\nmain()"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARCA_")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stderr


def assert_one_line_error(code: int, stderr: str, key: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("arca: ")
    assert key in lines[0]


@pytest.mark.parametrize(("text", "key"), BAD_CONFIGS)
def test_check_config_names_the_bad_key(tmp_path: Path, text: str, key: str) -> None:
    """In-process (a process per case costs seconds); serve's cases below run for real."""
    from typer.testing import CliRunner

    from arca.cli import app

    config = tmp_path / "arca.toml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["check-config", str(config)])
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert_one_line_error(result.exit_code, result.stderr, key)
    assert result.stdout == ""


def test_check_config_in_a_real_process_is_the_same_line(tmp_path: Path) -> None:
    config = tmp_path / "arca.toml"
    config.write_text("[server]\nport = 99999\n")
    code, stderr = arca("check-config", str(config))
    assert_one_line_error(code, stderr, "server.port")
    assert stderr == "arca: server.port must be 1 to 65535, not 99999\n"


@pytest.mark.parametrize(("text", "key"), [p for p in BAD_CONFIGS if p.id in SERVE_CHECKED])
def test_serve_refuses_the_bad_config_before_binding(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "arca.toml"
    port = _free_port()
    if "server.port" not in key:  # else the flag would override the bad port
        text = f"[server]\nport = {port}\n" + text.replace("[server]\n", "")
    config.write_text(text)
    assert_one_line_error(*arca("serve", "--config", str(config)), key)
    with socket.socket() as sock:  # nothing took the port
        sock.bind(("127.0.0.1", port))


def test_serve_with_storage_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("a file")
    code, stderr = arca("serve", "--storage", str(not_a_directory), "--port", str(_free_port()))
    assert_one_line_error(code, stderr, "storage.filesystem.root")
    assert str(not_a_directory) in stderr


def test_serve_refuses_a_port_uvicorn_would_wrap(tmp_path: Path) -> None:
    assert_one_line_error(*arca("serve", "--port", "99999"), "server.port")


def test_bad_environment_override_names_the_key() -> None:
    code, stderr = arca("check-config", os.devnull, env={"ARCA_SERVER_WORKERS": "many"})
    assert_one_line_error(code, stderr, "server.workers")


def test_s3_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    config = tmp_path / "arca.toml"
    config.write_text(S3 + '[storage.s3]\nbucket = "b"\n')
    hide = "import sys; sys.modules['aiobotocore'] = None  # as if arca[s3] were not installed"
    for args in (["check-config", str(config)], ["serve", "--config", str(config)]):
        code, stderr = arca(*args, prelude=hide)
        assert_one_line_error(code, stderr, "install arca[s3]")
        assert "storage.driver" in stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(*arca("check-config", str(tmp_path / "nope.toml")), "nope.toml")


def test_check_config_prints_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    import tomllib

    config = tmp_path / "arca.toml"
    config.write_text(
        S3 + '[storage.s3]\nbucket = "b"\naccess_key_id = "AKIA1"\nsecret_access_key = "hush"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "arca", "check-config", str(config)],
        env={**os.environ, "ARCA_SERVER_PORT": "6001", "ARCA_STORAGE_S3_SESSION_TOKEN": "tok"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "hush" not in done.stdout
    assert "tok" not in done.stdout.replace("token", "")
    effective = tomllib.loads(done.stdout)  # the output is itself a config file
    assert effective["server"]["port"] == 6001  # the environment applies, as for serve
    assert effective["storage"]["s3"]["secret_access_key"] == "***"
    assert effective["storage"]["s3"]["session_token"] == "***"
    assert effective["storage"]["s3"]["access_key_id"] == "AKIA1"
    assert effective["storage"]["s3"]["part_size"] == 8 << 20  # defaults are shown
    assert effective["limits"]["manifest_max_bytes"] == 4 << 20
