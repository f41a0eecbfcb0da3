"""`[auth]` is off by default and checked when settings load."""

from __future__ import annotations

import pytest

from arca.auth.settings import groups_of, oidc_of, policy_of
from arca.config import ConfigError, load_settings


def test_auth_is_off_by_default():
    settings = load_settings({})
    assert settings.auth.enabled is False


def test_a_full_auth_section_loads(tmp_path):
    config = tmp_path / "arca.toml"
    config.write_text(
        """
[auth]
htpasswd = "/etc/arca/htpasswd"
groups = { ci = ["bob"], ops = ["bob", "carol"] }

[[auth.policies]]
repositories = ["public/**"]
anonymous = ["pull"]

[[auth.policies]]
repositories = ["team/**"]
groups = ["ci"]
actions = ["pull", "push"]

[auth.oidc]
issuer = "https://token.actions.githubusercontent.com"
jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"
audience = "arca"
claim_groups = [{ claim = "repository", value = "org/app", groups = ["ci"] }]
"""
    )
    settings = load_settings({}, config)
    assert groups_of(settings.auth) == {"bob": {"ci", "ops"}, "carol": {"ops"}}
    assert len(policy_of(settings.auth).entries) == 2
    oidc = oidc_of(settings.auth)
    assert oidc is not None
    assert oidc.username_claim == "sub"
    assert oidc.claim_groups[0].groups == {"ci"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[auth.policies]]\nrepositories = ["x"]\nusers = ["a"]\nactions = ["write"]\n', "write"),
        ("[auth]\nenabled = 1\n", "true or false"),
        ("[auth]\ntoken_ttl_seconds = 10\n", "at least 60"),
        ('[auth.oidc]\nissuer = "x"\n', "jwks_url"),
        ('[auth]\ngroups = { ci = "bob" }\n', "list of user names"),
        ('[server]\ntls_cert = "/c.pem"\n', "tls_key"),
        ("[auth]\npolicies = 3\n", "array"),
    ],
)
def test_an_auth_setting_arca_cannot_use_is_an_error(tmp_path, text, message):
    config = tmp_path / "arca.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings({}, config)


def test_environment_overrides_reach_auth():
    settings = load_settings({"ARCA_AUTH_SERVICE": '"reg"'})
    assert settings.auth.service == "reg"
