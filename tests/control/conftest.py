from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from arca.app import create_app
from arca.config import Settings
from arca.storage.driver import Driver
from arca.storage.drivers.memory import MemoryDriver

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    """Build an app inline over a given (default: fresh memory) driver."""
    clients: list[TestClient] = []

    def make(driver: Driver | None = None) -> TestClient:
        client = TestClient(create_app(Settings(), driver or MemoryDriver()))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: ClientFactory) -> TestClient:
    return client_factory()
