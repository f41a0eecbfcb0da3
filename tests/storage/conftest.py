"""The shared driver suite's fixtures: one parametrised `driver` over every backend.

A backend is a function `(request) -> new`, where `new()` makes another driver instance
on the same storage (for "resume from another process" cases). Adding a driver to the
suite is one `pytest.param` line in BACKENDS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from arca.storage.checked import checked
from arca.storage.driver import Driver
from arca.storage.drivers.filesystem import FilesystemDriver
from arca.storage.drivers.memory import MemoryDriver
from tests.conftest import (
    S3_CREDENTIALS,
    S3_REGION,
    azurite_connection_string,
    create_bucket,
    create_container,
    create_gcs_bucket,
)

NewDriver = Callable[[], Driver]
Backend = Callable[[pytest.FixtureRequest], NewDriver]


# What an emulator in the suite does not implement, per backend: the tests of those
# features are strict xfails there (they must fail, so a fixed emulator is noticed).
GAPS = pytest.StashKey[dict[str, str]]()
GCS_EMULATOR_GAPS = {
    "if_absent": "gcp-storage-emulator ignores ifGenerationMatch: a create-only upload"
    " overwrites (real GCS refuses it with 412, which the driver maps to AlreadyExists)",
    "delete_if": "gcp-storage-emulator ignores ifGenerationMatch on deletes, so a put"
    " landing between delete_if's read and its delete is deleted (real GCS refuses that"
    " delete with 412; tests/storage/test_gcs.py checks the request and its reading)",
}


def expect_gap(request: pytest.FixtureRequest, feature: str) -> None:
    """Mark the running test a strict xfail if its backend's emulator lacks `feature`."""
    reason = request.node.stash.get(GAPS, {}).get(feature)
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def skip_gap(request: pytest.FixtureRequest, feature: str) -> None:
    """Skip the running test if its backend's emulator lacks `feature` and the test
    cannot be relied on to fail there (a race that the emulator loses only sometimes)."""
    reason = request.node.stash.get(GAPS, {}).get(feature)
    if reason is not None:
        pytest.skip(reason)


def memory(request: pytest.FixtureRequest) -> NewDriver:
    driver = MemoryDriver()
    return lambda: driver  # its store is the instance: "another instance" is this one


def filesystem(request: pytest.FixtureRequest) -> NewDriver:
    root = request.getfixturevalue("tmp_path") / "root"
    return lambda: FilesystemDriver(str(root))


def filesystem_without_fsync(request: pytest.FixtureRequest) -> NewDriver:
    root = request.getfixturevalue("tmp_path") / "root"
    return lambda: FilesystemDriver(str(root), fsync=False)


def s3(prefix: str = "") -> Backend:
    def backend(request: pytest.FixtureRequest) -> NewDriver:
        from arca.storage.drivers.s3 import MIN_PART_SIZE, S3Driver

        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = create_bucket(endpoint)
        # The smallest part size S3 allows, so multipart paths run on small objects.
        return lambda: S3Driver(
            bucket,
            prefix=prefix,
            endpoint_url=endpoint,
            region=S3_REGION,
            part_size=MIN_PART_SIZE,
            redirect=True,
            access_key_id=S3_CREDENTIALS["access_key_id"],
            secret_access_key=S3_CREDENTIALS["secret_access_key"],
        )

    return backend


def azure(prefix: str = "") -> Backend:
    def backend(request: pytest.FixtureRequest) -> NewDriver:
        from arca.storage.drivers.azure import MIN_BLOCK_SIZE, AzureBlobDriver

        connection_string = azurite_connection_string(request.getfixturevalue("azurite_endpoint"))
        container = create_container(connection_string)
        # The smallest block size allowed, so multi-block writers run on small objects.
        return lambda: AzureBlobDriver(
            container,
            prefix=prefix,
            connection_string=connection_string,
            block_size=MIN_BLOCK_SIZE,
            redirect=True,
        )

    return backend


def gcs(prefix: str = "") -> Backend:
    def backend(request: pytest.FixtureRequest) -> NewDriver:
        from arca.storage.drivers.gcs import GRANULARITY, GCSDriver

        endpoint = request.getfixturevalue("gcs_endpoint")
        bucket = create_gcs_bucket(endpoint)
        key_file = request.getfixturevalue("gcs_key_file")
        # Small chunks, so multi-chunk writers run on small objects.
        return lambda: GCSDriver(
            bucket,
            prefix=prefix,
            endpoint_url=endpoint,
            anonymous=True,
            credentials_file=key_file,
            chunk_size=4 * GRANULARITY,
            redirect=True,
        )

    backend.gaps = GCS_EMULATOR_GAPS  # type: ignore[attr-defined]
    return backend


BACKENDS = [
    pytest.param(memory, id="memory"),
    pytest.param(filesystem, id="filesystem"),
    pytest.param(filesystem_without_fsync, id="filesystem-nofsync"),
    pytest.param(s3(), id="s3"),
    pytest.param(s3("tenant/registry"), id="s3-prefix"),
    pytest.param(azure(), id="azure"),
    pytest.param(azure("tenant/registry"), id="azure-prefix"),
    pytest.param(gcs(), id="gcs"),
    pytest.param(gcs("tenant/registry"), id="gcs-prefix"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiobotocore needs asyncio


@pytest.fixture(params=BACKENDS)
async def new_driver(request: pytest.FixtureRequest) -> AsyncIterator[NewDriver]:
    """Make driver instances on one fresh storage; all are closed after the test.

    Each is behind the checking wrapper, as every loaded driver is (storage/checked.py):
    the contract, path checks included, is what the wrapped driver gives."""
    request.node.stash[GAPS] = getattr(request.param, "gaps", {})
    make: NewDriver = request.param(request)
    made: list[Driver] = []

    def new() -> Driver:
        made.append(checked(make()))
        return made[-1]

    yield new
    for driver in made:
        await driver.close()


@pytest.fixture
def driver(new_driver: NewDriver) -> Driver:
    return new_driver()
