from __future__ import annotations

import re
from pathlib import Path

import pytest

from arca.config import ConfigError, load_settings

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_defaults_need_no_file():
    settings = load_settings({})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 5000)
    assert settings.storage.driver == "filesystem"
    assert settings.storage.driver_options() == {"root": "./data"}


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_examples_load(example):
    load_settings({}, example)


def test_environment_overrides_file(tmp_path):
    config = tmp_path / "arca.toml"
    config.write_text('[server]\nport = 6000\n[storage.s3]\nbucket = "from-file"\n')
    settings = load_settings(
        {
            "ARCA_SERVER_PORT": "7000",
            "ARCA_STORAGE_DRIVER": "s3",
            "ARCA_STORAGE_S3_REGION": "eu-west-1",
        },
        config,
    )
    assert settings.server.port == 7000
    assert settings.storage.driver_options() == {"bucket": "from-file", "region": "eu-west-1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "unknown key(s) in [server]: prot"),
        ("[serve]\n", "unknown config section(s): serve"),
        ("[server]\nport = 'x'\n", "server.port must be an integer"),
        ("[storage]\ndriver = 'ftp'\n", "storage.driver must be one of"),
        ("[server\n", "not valid TOML"),
        ("[events]\npull_sample_rate = nan\n", "events.pull_sample_rate must be 0 to 1"),
        ("[events]\nstream_poll_seconds = 0\n", "events.stream_poll_seconds must be more"),
        ("[events]\nlease_seconds = inf\n", "events.lease_seconds must be more than 0"),
        ("[events]\ncompact_after_seconds = -1\n", "events.compact_after_seconds must be at"),
        ("[gc]\nlease_seconds = 0\n", "gc.lease_seconds must be at least 1"),
        ('[gc]\nuntagged = "never"\n', "gc.untagged must be one of keep, delete"),
        ("[trash]\nretention_seconds = -5\n", "trash.retention_seconds must be at least 0"),
    ],
)
def test_bad_config_is_an_error_naming_the_problem(tmp_path, text, message):
    config = tmp_path / "arca.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({}, config)


def test_unknown_environment_override_is_an_error():
    with pytest.raises(ConfigError, match="ARCA_SERVR_PORT"):
        load_settings({"ARCA_SERVR_PORT": "1"})


def test_gc_settings_are_checked(tmp_path) -> None:
    import pytest

    from arca.config import ConfigError, load_settings

    config = tmp_path / "gc.toml"
    config.write_text(
        '[gc]\ninterval_seconds = 5\nuntagged = "delete"\n[trash]\nretention_seconds = 60\n'
    )
    settings = load_settings({}, config)
    assert settings.gc.interval_seconds == 5
    assert settings.gc.untagged == "delete"
    assert settings.trash.retention_seconds == 60
    config.write_text('[gc]\nuntagged = "sometimes"\n')
    with pytest.raises(ConfigError, match="untagged"):
        load_settings({}, config)
    with pytest.raises(ConfigError, match="grace_seconds"):
        load_settings({"ARCA_GC_GRACE_SECONDS": "-1"})
