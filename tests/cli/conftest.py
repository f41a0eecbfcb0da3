from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from arca import cli
from arca.app import create_app
from arca.client.sync import ArcaClient
from arca.storage.drivers.filesystem import FilesystemDriver

Invoke = Callable[..., Result]


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def invoke(storage: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run `arca …` in-process against an app over filesystem storage at `storage`."""
    app = create_app(driver=FilesystemDriver(str(storage)))
    transport = httpx.ASGITransport(app=app)
    monkeypatch.setattr(
        cli,
        "_client",
        lambda registry, timeout: ArcaClient("http://arca.test", transport=transport),
    )
    return make_invoke()


def make_invoke(env: dict[str, str] | None = None) -> Invoke:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli.app, [str(arg) for arg in args], env=env or {})

    return run


def json_out(result: Result) -> Any:
    """The one JSON document `--json` prints on stdout (nothing else allowed there)."""
    return json.loads(result.stdout)
