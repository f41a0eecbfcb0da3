"""`[events]` and `[[events.webhooks]]`: what a configuration may say, and what it may not."""

from __future__ import annotations

from pathlib import Path

import pytest

from arca.config import ConfigError, load_settings

HOOK = '[[events.webhooks]]\nurl = "http://127.0.0.1:9000/hook"\n'


def _load(tmp_path: Path, text: str):
    path = tmp_path / "arca.toml"
    path.write_text(text)
    return load_settings({}, path)


def test_webhooks_are_read_with_defaults_and_a_stable_name(tmp_path) -> None:
    text = HOOK + 'secret = "s3cret"\ntypes = ["manifest.pushed"]\nrepositories = ["team/*"]\n'
    text += HOOK.replace("9000", "9001") + 'name = "ci"\n'
    first, second = _load(tmp_path, text).events.webhooks
    assert first.secret == "s3cret"
    assert first.types == ("manifest.pushed",)
    assert first.repositories == ("team/*",)
    assert first.max_attempts == 10
    assert len(first.name) == 16
    assert first.name == _load(tmp_path, text).events.webhooks[0].name
    assert second.name == "ci"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[events.webhooks]]\nsecret = "x"\n', "needs a url"),
        ('[[events.webhooks]]\nurl = "ftp://x/"\n', "must be http(s)"),
        (HOOK + "timeout = 3\n", "unknown key(s) in [events.webhooks[0]]: timeout"),
        (HOOK + 'types = ["manifest.pushd"]\n', "unknown type 'manifest.pushd'"),
        (HOOK + 'name = "Bad Name"\n', "lowercase letters"),
        (HOOK + "max_attempts = 0\n", "must be positive"),
        (HOOK + 'name = "a"\n' + HOOK + 'name = "a"\n', "same name"),
        ('[[events.webhooks]]\nurl = "http://169.254.169.254/latest"\n', "link-local or metadata"),
        ('[[events.webhooks]]\nurl = "http://[fe80::1]:80/"\n', "link-local or metadata"),
        ("[events]\npull_sample_rate = 2\n", "events.pull_sample_rate must be 0 to 1"),
        ('[events]\nenabled = "yes"\n', "must be true or false"),
    ],
)
def test_bad_event_settings_are_refused_with_the_reason(tmp_path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    assert needle in str(error.value)


def test_a_metadata_address_is_allowed_only_when_said_so(tmp_path) -> None:
    text = '[[events.webhooks]]\nurl = "http://169.254.169.254/"\nallow_link_local = true\n'
    assert _load(tmp_path, text).events.webhooks[0].allow_link_local
