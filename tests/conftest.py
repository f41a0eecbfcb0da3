"""Fixtures shared by every test directory. Keep each section small and self-contained."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
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


def bucket_keys(endpoint_url: str, bucket: str) -> list[str]:
    """Every key in `bucket` on `endpoint_url`."""
    client = _botocore_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=S3_REGION,
        aws_access_key_id=S3_CREDENTIALS["access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["secret_access_key"],
    )
    try:
        keys = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys
    finally:
        client.close()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    return create_bucket(s3_endpoint)


# -- Azure Blob: one Azurite per test session ---------------------------------------------
#
# Azurite comes from the npm registry into `.cache/azurite` (ignored by git); `make test`
# installs it and the fixture installs it on first use where it is missing, so a fresh
# worktree runs the suite too. Data lives in a temporary folder (not in memory: the
# 1 GiB tests would hold it all in the node process). `create_container(conn)` makes a
# fresh container, as `create_bucket` does for S3.

AZURITE_VERSION = "3.37.0"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key, the same for every Azurite everywhere.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_DIR = REPO_ROOT / ".cache" / "azurite"


def azurite_binary() -> Path:
    """`azurite-blob` from `.cache/azurite`, installed there with npm if missing."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        AZURITE_DIR.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(AZURITE_DIR),
             f"azurite@{AZURITE_VERSION}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0 or not binary.exists():
            pytest.fail(f"npm install azurite failed: {result.stderr[-2000:]}")
    return binary


def azurite_connection_string(endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )


def _wait_for_port(process: subprocess.Popen[bytes], port: int, name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not listen on {port}: {log.read_text()[-3000:]}")
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Azurite's blob service on a free port; yield its URL; stop it at the end."""
    binary = azurite_binary()
    port = _free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    log = workspace / "azurite.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
             "--location", str(workspace / "data"), "--skipApiVersionCheck",
             "--disableTelemetry", "--silent"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
    try:
        _wait_for_port(process, port, "azurite", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def create_container(connection_string: str) -> str:
    """A new, empty container on the account of `connection_string`; returns its name."""
    from azure.storage.blob import BlobServiceClient  # only where Azure tests run

    name = f"arca-test-{uuid.uuid4().hex[:16]}"
    with BlobServiceClient.from_connection_string(connection_string) as service:
        service.create_container(name)
    return name


@pytest.fixture
def azure_container(azurite_endpoint: str) -> str:
    return create_container(azurite_connection_string(azurite_endpoint))


# -- Google Cloud Storage: one gcp-storage-emulator per test session --------------------
#
# gcp-storage-emulator (PyPI, the tests group) in memory, on a free port, through
# tests/gcs_emulator.py (which skips two of its costs that grow with the session). It lacks some
# of GCS: it ignores `ifGenerationMatch` (create-only uploads overwrite), cannot cancel
# a resumable session (501) and answers a range past the end with an empty 206; the
# tests that depend on those say so. Requests go unauthenticated (`anonymous`); a
# throwaway service-account key signs URLs, which the emulator serves without checking.


GCS_EMULATOR = Path(__file__).with_name("gcs_emulator.py")


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start gcp-storage-emulator on a free port; yield its URL; stop it at the end."""
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.fail("gcp_storage_emulator not found: install the tests group")
    port = _free_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(GCS_EMULATOR), "start", "--host", "127.0.0.1",
             "--port", str(port), "--in-memory", "-q"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )  # fmt: skip
    try:
        _wait_for_port(process, port, "gcp-storage-emulator", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def create_gcs_bucket(endpoint: str) -> str:
    """A new, empty bucket on the emulator at `endpoint`; returns its name."""
    name = f"arca-test-{uuid.uuid4().hex[:16]}"
    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=arca-test",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return name


@pytest.fixture
def gcs_bucket(gcs_endpoint: str) -> str:
    return create_gcs_bucket(gcs_endpoint)


@pytest.fixture(scope="session")
def gcs_key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A service-account key file of a made-up account, for signing URLs."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path_factory.mktemp("gcs-key") / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "arca-test@arca-test.iam.gserviceaccount.com",
                "private_key": pem,
                "token_uri": "http://127.0.0.1:9/token",  # never used: requests are anonymous
            }
        )
    )
    return str(path)


# -- The app in-process: build it inline over a driver of the test's choosing ------------

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    """Build an app inline over a given (default: fresh memory) driver and settings."""
    clients: list[TestClient] = []

    def make(
        driver: Driver | None = None, settings: Settings | None = None, **options: Any
    ) -> TestClient:
        client = TestClient(create_app(settings or Settings(), driver or MemoryDriver()), **options)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: ClientFactory) -> TestClient:
    return client_factory()
