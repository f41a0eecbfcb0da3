"""Racing clients on one registry with two workers (tests/e2e/races.py): no 5xx, and an
end state that a serial order of the acknowledged requests gives. On the filesystem
and on S3 (moto), for a bounded time each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_bucket
from tests.e2e.races import check, race
from tests.e2e.server import ArcaServer, s3_environment

SECONDS = 8.0
CLIENTS = 6


@pytest.fixture
def filesystem_workers(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data", {"ARCA_SERVER_WORKERS": "2"}).start()
    yield server
    server.stop()


@pytest.fixture
def s3_workers(tmp_path: Path, s3_endpoint: str) -> Iterator[ArcaServer]:
    env = {**s3_environment(s3_endpoint, create_bucket(s3_endpoint)), "ARCA_SERVER_WORKERS": "2"}
    server = ArcaServer(tmp_path / "data", env).start()
    yield server
    server.stop()


def test_racing_clients_on_two_filesystem_workers_end_serialisable(
    filesystem_workers: ArcaServer,
) -> None:
    history = race(
        filesystem_workers.url,
        clients=CLIENTS,
        seconds=SECONDS,
        seed=1,
        at_least={"put-tag": 51, "delete-tag": 21},
    )
    counts = check(filesystem_workers.url, history)
    assert counts["put-tag"] > 50, counts  # it really raced
    assert counts["delete-tag"] > 20, counts


def test_racing_clients_on_two_s3_workers_end_serialisable(s3_workers: ArcaServer) -> None:
    history = race(
        s3_workers.url,
        clients=CLIENTS,
        seconds=1.5 * SECONDS,
        seed=2,
        at_least={"put-tag": 11, "delete-tag": 4},
    )
    counts = check(s3_workers.url, history)
    assert counts["put-tag"] > 10, counts  # moto answers slower than a filesystem
    assert counts["delete-tag"] > 3, counts
