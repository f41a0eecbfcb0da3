"""A real `arca serve` with auth on: htpasswd users, a policy, a config file."""

from __future__ import annotations

import json
from pathlib import Path

from arca.auth.htpasswd import set_user
from tests.auth.helpers import PASSWORD, USERS
from tests.e2e.server import ArcaServer

CONFIG = """\
[auth]
enabled = true
htpasswd = "{htpasswd}"
admins = ["admin"]
revocation_check_seconds = {recheck}
policies = {policies}
"""
POLICIES = [
    {"repositories": ["team/**"], "users": ["writer"], "actions": ["pull", "push"]},
    {"repositories": ["team/**"], "users": ["reader"], "actions": ["pull"]},
    {"repositories": ["public/**"], "anonymous": ["pull"]},
]


def write_config(directory: Path, recheck: int = 5) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    htpasswd = directory / "htpasswd"
    for user in USERS:
        set_user(htpasswd, user, PASSWORD, rounds=4)
    config = directory / "arca.toml"
    config.write_text(
        CONFIG.format(
            htpasswd=htpasswd,
            recheck=recheck,
            policies=_toml_array(POLICIES),
        )
    )
    return config


def _toml_array(entries: list[dict[str, list[str]]]) -> str:
    tables = [
        "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in entry.items()) + " }"
        for entry in entries
    ]
    return "[" + ", ".join(tables) + "]"


def auth_server(root: Path, env: dict[str, str] | None = None, recheck: int = 5) -> ArcaServer:
    config = write_config(root / "config", recheck)
    return ArcaServer(root / "data", env={"ARCA_CONFIG": str(config), **(env or {})})
