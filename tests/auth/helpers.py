"""An app with auth on over the memory driver, users in a temporary htpasswd file."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from arca.app import create_app
from arca.auth.htpasswd import set_user
from arca.config import AuthSettings, ServerSettings, Settings
from arca.storage.driver import Driver
from arca.storage.drivers.memory import MemoryDriver

ALL = ["pull", "push", "delete", "admin"]
PUSH = ["push"]
PASSWORD = "correct horse"
USERS = ("reader", "writer", "deleter", "admin", "builder")

POLICIES: list[dict[str, Any]] = [
    {"repositories": ["team/**"], "users": ["reader"], "actions": ["pull"]},
    {"repositories": ["team/**"], "users": ["writer"], "actions": ["pull", "push"]},
    {"repositories": ["team/**"], "users": ["deleter"], "actions": ["pull", "delete"]},
    {"repositories": ["team/**"], "groups": ["ci"], "actions": ["pull", "push"]},
    {
        "repositories": ["public/**"],
        "anonymous": ["pull"],
        "users": ["writer"],
        "actions": ["push"],
    },
    {"repositories": ["builds/**"], "users": ["builder"], "actions": ["pull", "push"]},
]


def auth_settings(tmp_path: Path, **auth: Any) -> Settings:
    htpasswd = tmp_path / "htpasswd"
    for user in USERS:
        set_user(htpasswd, user, PASSWORD, rounds=4)
    options: dict[str, Any] = {
        "enabled": True,
        "htpasswd": str(htpasswd),
        "policies": tuple(POLICIES),
        "groups": {"ci": ["builder"]},
        "admins": ("admin",),
        **auth,
    }
    return Settings(auth=AuthSettings(**options))


def with_server(settings: Settings, **server: Any) -> Settings:
    return dataclasses.replace(settings, server=ServerSettings(**server))


class AppClient(TestClient):
    """A test client that knows its app is arca's, so tests reach `app.state` typed."""

    app: Starlette


def auth_client(settings: Settings, driver: Driver | None = None) -> AppClient:
    app = create_app(settings, driver or MemoryDriver())
    return AppClient(app, base_url="http://registry.test")


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(client: TestClient, user: str | None, *scopes: str, password: str = PASSWORD) -> str:
    headers = basic(user, password) if user else {}
    response = client.get(
        "/auth/token",
        params=[("service", "arca"), *(("scope", s) for s in scopes)],
        headers=headers,
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["token"]
    return value
