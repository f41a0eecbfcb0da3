"""A client that goes away mid-body is an ordinary event: one info line, no traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from arca.app import create_app
from arca.config import Settings
from arca.storage.drivers.memory import MemoryDriver


async def _request(app, method: str, path: str, query: str = "") -> list[dict]:
    """Send headers and part of the body the way uvicorn does, then disconnect."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"arca.test"), (b"content-length", b"1048576")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5000),
    }
    messages: list[dict] = [
        {"type": "http.request", "body": b"x" * 1000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # pragma: no cover - never asked again
        raise AssertionError

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _open_session(app) -> str:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": "POST",
        "path": "/v2/app/blobs/uploads/",
        "raw_path": b"/v2/app/blobs/uploads/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"arca.test")],
    }
    await app(scope, receive, send)
    headers = dict(sent[0]["headers"])
    return headers[b"location"].decode()


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("PATCH", "{session}", ""),
        ("PUT", "{session}", "digest=sha256:" + "0" * 64),
        ("POST", "/v2/app/blobs/uploads/", "digest=sha256:" + "0" * 64),
        ("PUT", "/v2/app/manifests/v1", ""),
    ],
)
def test_disconnect_mid_body_is_one_info_line_with_method_and_path(caplog, method, path, query):
    app = create_app(Settings(), MemoryDriver())

    async def run() -> str:
        target = await _open_session(app) if path == "{session}" else path
        await _request(app, method, target, query)
        return target

    with caplog.at_level(logging.DEBUG):
        target = asyncio.run(run())
    # Besides the access lines (arca.access, one per request) there is one line.
    ours = [r for r in caplog.records if r.name.startswith("arca") and r.name != "arca.access"]
    assert [r.levelno for r in ours] == [logging.INFO], [r.getMessage() for r in ours]
    (record,) = ours
    assert record.exc_info is None
    assert record.method == method
    assert record.path == target
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
