"""Request ids, the access line and its facts, in-process (the real server: tests/e2e)."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from arca.api.observe import Observe
from arca.app import create_app
from arca.config import Settings
from arca.log import JsonFormatter, RequestIdFilter, TextFormatter, request_id
from arca.storage.drivers.memory import MemoryDriver


async def signed_in(scope: Scope, receive: Receive, send: Send) -> None:
    """What the auth middleware will do: name the principal in the request's state."""
    scope["state"]["user"] = "alice"
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "arca.access"]


def test_the_authenticated_user_is_in_the_access_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="arca.access")
    response = TestClient(Observe(signed_in)).get("/anything")  # no lifespan: no `with`
    (record,) = access_records(caplog)
    assert record.user == "alice"  # type: ignore[attr-defined]
    assert record.request_id == response.headers["X-Request-ID"]  # type: ignore[attr-defined]
    assert record.route == "unmatched"  # type: ignore[attr-defined]


class Broken(MemoryDriver):
    async def get(self, path: str) -> bytes:
        raise RuntimeError("a bug")


def test_an_unexpected_error_is_counted_logged_and_has_an_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="arca.access")
    caplog.handler.addFilter(RequestIdFilter())  # as on arca's handler (arca/log.py)
    labels = {"method": "GET", "route": "/v2/{name:path}/manifests/{reference}", "status": "500"}
    before = REGISTRY.get_sample_value("arca_http_requests_total", labels) or 0
    app = create_app(Settings(), Broken())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v2/team/app/manifests/v1")
    assert response.status_code == 500
    (record,) = access_records(caplog)
    assert record.status == 500  # type: ignore[attr-defined]
    assert record.request_id == response.headers["X-Request-ID"]  # type: ignore[attr-defined]
    assert REGISTRY.get_sample_value("arca_http_requests_total", labels) == before + 1
    failure = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert failure
    assert failure[0].request_id == record.request_id  # type: ignore[attr-defined]


def make_record(**extra: object) -> logging.LogRecord:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "arca.test", logging.WARNING, __file__, 1, "stored %s", ("x",), exc_info
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_the_facts_and_the_exception() -> None:
    line = JsonFormatter().format(make_record(repository="team/app", size=3))
    document = json.loads(line)
    assert "\n" not in line
    assert document["level"] == "warning"
    assert document["logger"] == "arca.test"
    assert document["message"] == "stored x"
    assert (document["repository"], document["size"]) == ("team/app", 3)
    assert "ValueError: boom" in document["exception"]
    assert document["time"].endswith("Z")


def test_text_lines_show_the_facts_quoted_when_needed() -> None:
    text = TextFormatter().format(make_record(repository="team/app", note="two words"))
    first = text.splitlines()[0]
    assert ' WARNING arca.test stored x · repository=team/app note="two words"' in first
    assert "ValueError: boom" in text


def test_records_logged_during_a_request_carry_its_id() -> None:
    token = request_id.set("req-1")
    try:
        record = make_record()
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    assert record.request_id == "req-1"  # type: ignore[attr-defined]
    outside = make_record()
    RequestIdFilter().filter(outside)
    assert not hasattr(outside, "request_id")
