"""An upload outlives the process that started it."""

from __future__ import annotations

import hashlib
import os

import httpx

from tests.e2e.server import ArcaServer


def test_chunked_upload_survives_server_restarts_between_chunks(arca: ArcaServer) -> None:
    chunks = [os.urandom(2_000_000), os.urandom(1_500_000), os.urandom(333_333)]
    data = b"".join(chunks)
    location = httpx.post(f"{arca.url}/v2/restarts/blobs/uploads/").headers["Location"]
    offset = 0
    for chunk in chunks:
        arca.restart()
        response = httpx.patch(
            f"{arca.url}{location}",
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        offset += len(chunk)
    arca.restart()
    assert httpx.get(f"{arca.url}{location}").headers["Range"] == f"0-{len(data) - 1}"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.put(f"{arca.url}{location}?digest={digest}", timeout=60).status_code == 201
    assert httpx.get(f"{arca.url}/v2/restarts/blobs/{digest}", timeout=60).content == data
