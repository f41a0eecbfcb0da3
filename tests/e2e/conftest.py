from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ArcaServer


@pytest.fixture
def arca(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data").start()
    yield server
    server.stop()
