"""Upload sessions after a process died mid-request: the offset a session reports is
the one its state proves, every path (GET, PATCH, PUT) agrees on it, and a close
that died after publishing the blob completes when retried."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from arca.config import Settings
from arca.storage.driver import StorageError
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.conftest import ClientFactory
from tests.doubles import WrappingDriver

MiB = 1 << 20


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def session_data(root: Path, location: str) -> Path:
    return root / "uploads" / location.rstrip("/").rsplit("/", 1)[-1] / "data"


def test_stray_bytes_after_a_kill_between_data_and_state_are_cut_off(
    client_factory: ClientFactory, tmp_path: Path
) -> None:
    """The issue's repro: what kill -9 between the data write and the state save leaves."""
    client = client_factory(FilesystemDriver(str(tmp_path)), Settings())
    first, second = os.urandom(MiB), os.urandom(MiB + 1000)
    location = client.post("/v2/repo/blobs/uploads/").headers["Location"]
    response = client.patch(location, content=first, headers={"Content-Range": f"0-{MiB - 1}"})
    assert response.status_code == 202
    with open(session_data(tmp_path, location), "ab") as data:
        data.write(os.urandom(1000))  # written, never acknowledged

    assert client.get(location).headers["Range"] == f"0-{MiB - 1}"
    end = MiB + len(second) - 1
    response = client.patch(location, content=second, headers={"Content-Range": f"{MiB}-{end}"})
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{end}"
    digest = sha256(first + second)
    response = client.put(f"{location}?digest={digest}")
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/repo/blobs/{digest}").content == first + second


def test_a_close_with_stray_bytes_publishes_only_the_acknowledged_ones(
    client_factory: ClientFactory, tmp_path: Path
) -> None:
    client = client_factory(FilesystemDriver(str(tmp_path)), Settings())
    data = os.urandom(3000)
    location = client.post("/v2/repo/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=data).status_code == 202
    with open(session_data(tmp_path, location), "ab") as stored:
        stored.write(b"stray")
    response = client.put(f"{location}?digest={sha256(data)}")
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/repo/blobs/{sha256(data)}").content == data


class DiesBeforeLinking(WrappingDriver):
    """Fails the first blob link, as a process killed right after publishing would."""

    armed = True

    def _seen(self, method: str, path: str) -> None:
        if self.armed and method == "put" and "/_layers/" in path:
            self.armed = False
            raise StorageError("killed between publishing the blob and linking it")


@pytest.mark.parametrize("final_chunk", [False, True])
def test_a_close_that_died_after_publishing_completes_when_retried(
    client_factory: ClientFactory, tmp_path: Path, final_chunk: bool
) -> None:
    driver = DiesBeforeLinking(FilesystemDriver(str(tmp_path)))
    client = client_factory(driver, Settings(), raise_server_exceptions=False)
    head, tail = os.urandom(2 * MiB), os.urandom(100) if final_chunk else b""
    digest = sha256(head + tail)
    location = client.post("/v2/repo/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=head).status_code == 202
    assert client.put(f"{location}?digest={digest}", content=tail).status_code == 500
    assert client.head(f"/v2/repo/blobs/{digest}").status_code == 404  # not linked yet
    assert client.get(location).headers["Range"] == f"0-{len(head) - 1}"

    response = client.put(f"{location}?digest={digest}", content=tail)
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/repo/blobs/{digest}").content == head + tail
    assert client.get(location).status_code == 404  # the session is finished


def test_a_retried_close_with_another_digest_is_refused(
    client_factory: ClientFactory, tmp_path: Path
) -> None:
    driver = DiesBeforeLinking(FilesystemDriver(str(tmp_path)))
    client = client_factory(driver, Settings(), raise_server_exceptions=False)
    data = os.urandom(5000)
    location = client.post("/v2/repo/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=data).status_code == 202
    assert client.put(f"{location}?digest={sha256(data)}").status_code == 500
    response = client.put(f"{location}?digest={sha256(b'other')}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    assert client.head(f"/v2/repo/blobs/{sha256(b'other')}").status_code == 404
