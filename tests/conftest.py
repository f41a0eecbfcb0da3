"""Fixtures shared by every test directory. Keep each section small and self-contained."""

from __future__ import annotations

import ctypes
import functools
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from arca.app import create_app
from arca.config import Settings
from arca.storage.driver import Driver
from arca.storage.drivers.memory import MemoryDriver

# -- S3: one moto server per test session ------------------------------------------------
#
# `s3_endpoint` is the URL of a real S3 endpoint (moto in server mode, its own process),
# so any number of drivers or arca processes can share it. `s3_bucket` is a fresh bucket
# per test; `create_bucket(url)` makes more (e.g. one bucket shared by two arca
# processes in an end-to-end test). moto accepts any credentials: use S3_CREDENTIALS
# as driver options, or S3_ENVIRONMENT for a subprocess that reads the AWS chain.

S3_REGION = "us-east-1"
S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": S3_REGION,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM if pytest dies before its finalizers run."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `moto_server` on a free port; yield its URL; stop it at the end."""
    moto_server = Path(sys.executable).with_name("moto_server")
    if not moto_server.exists():
        pytest.fail(f"{moto_server} not found: install the tests group (moto[server])")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on {url}: {log.read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@functools.cache
def _botocore_session() -> Any:
    import botocore.session  # only where S3 tests run

    return botocore.session.get_session()  # one per run: a new one parses models (~0.2 s)


def create_bucket(endpoint_url: str) -> str:
    """A new, empty bucket with a valid S3 name on `endpoint_url`; returns its name."""
    name = f"arca-test-{uuid.uuid4().hex[:16]}"
    client = _botocore_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=S3_REGION,
        aws_access_key_id=S3_CREDENTIALS["access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["secret_access_key"],
    )
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()
    return name


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    return create_bucket(s3_endpoint)


# -- The app in-process: build it inline over a driver of the test's choosing ------------

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    """Build an app inline over a given (default: fresh memory) driver and settings."""
    clients: list[TestClient] = []

    def make(driver: Driver | None = None, settings: Settings | None = None) -> TestClient:
        client = TestClient(create_app(settings or Settings(), driver or MemoryDriver()))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: ClientFactory) -> TestClient:
    return client_factory()
