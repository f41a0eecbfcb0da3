"""Numbers a client sends are parsed by one strict parser: never a 500.

`str.isdigit` accepts "²" (which `int` refuses) and `int` refuses more than 4,300
digits; both used to escape as 500s from page sizes, `limit`, Range and Content-Range.
"""

from __future__ import annotations

import pytest

from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import error_code, push_blob, sha256
from tests.control.helpers import push_artifact

HUGE = "9" * 5000
SUPERSCRIPT = "²"
ARABIC_INDIC = "٣"  # a Unicode decimal digit: int() would read it as 3
SUBJECT = sha256(b"subject")

LISTINGS = [
    "/v2/app/tags/list?n={}",
    "/v2/_catalog?n={}",
    f"/v2/app/referrers/{SUBJECT}?n={{}}",
    "/api/v1/repositories/app/artifacts?limit={}",
]


@pytest.fixture
def stored(client_factory):
    driver = MemoryDriver()
    client = client_factory(driver)
    push_artifact(client, "app", "v1")
    return client, driver


@pytest.mark.parametrize("value", [SUPERSCRIPT, ARABIC_INDIC, "4" * 4301, HUGE, "1_0", " 5"])
@pytest.mark.parametrize("path", LISTINGS)
def test_hostile_page_sizes_are_400_unsupported(stored, path, value):
    client, _ = stored
    response = client.get(path.format(value))
    assert response.status_code == 400, response.text
    assert error_code(response) == "UNSUPPORTED"
    assert len(response.json()["errors"][0]["message"]) < 200


@pytest.mark.parametrize("path", LISTINGS)
def test_plain_page_sizes_still_work(stored, path):
    client, _ = stored
    assert client.get(path.format("5")).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        f"bytes=0-{HUGE}",
        f"bytes={HUGE}-",
        f"bytes=-{HUGE}",
        f"bytes={HUGE}-{HUGE}",
        "bytes=²-3".encode("latin-1"),
    ],
)
def test_hostile_blob_range_is_416_with_the_size(client, header):
    digest = push_blob(client, "app", b"0123456789")
    response = client.get(f"/v2/app/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 416, response.text
    assert error_code(response) == "SIZE_INVALID"
    assert response.headers["Content-Range"] == "bytes */10"


@pytest.mark.parametrize(
    "header",
    [
        f"0-{HUGE}",
        f"{HUGE}-{HUGE}",
        f"bytes 0-2/{HUGE}",
        "0-²".encode("latin-1"),
        f"bytes=0-{'9' * 4301}",
    ],
)
def test_hostile_content_range_on_patch_is_416_and_keeps_the_session(client, header):
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=b"abc").status_code == 202
    response = client.patch(location, content=b"def", headers={"Content-Range": header})
    assert response.status_code == 416, response.text
    assert error_code(response) == "BLOB_UPLOAD_INVALID"
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-2"
    closed = client.put(f"{location}?digest={sha256(b'abc')}")
    assert closed.status_code == 201, closed.text


def test_hostile_content_range_on_closing_put_is_416(client):
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    response = client.put(
        f"{location}?digest={sha256(b'abc')}",
        content=b"abc",
        headers={"Content-Range": f"0-{HUGE}"},
    )
    assert response.status_code == 416, response.text
    assert client.get(location).headers["Range"] == "0-0"
