"""GET /api/v1/events: pages in order with Link, filters, and clear errors."""

from __future__ import annotations

import re

import pytest

from arca.config import EventSettings, Settings
from tests.api.helpers import error_code, push_blob
from tests.events.helpers import events_after


def _blobs(client, count: int, name: str = "team/app") -> None:
    for n in range(count):
        push_blob(client, name, f"blob {n}".encode())


def test_pages_follow_the_link_header_in_order(client) -> None:
    _blobs(client, 5)  # ten events: blob.uploaded + upload.closed each
    seen = []
    url = "/api/v1/events?n=3"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += [event["id"] for event in response.json()["events"]]
        link = response.headers.get("link")
        found = re.match(r"<([^>]+)>", link) if link else None
        url = found[1] if found else ""
    assert len(seen) == 10
    assert seen == sorted(seen)
    assert len(set(seen)) == 10


def test_type_and_repository_filters(client) -> None:
    _blobs(client, 2, "team/app")
    _blobs(client, 1, "other")
    uploaded = events_after(client, None, type="blob.uploaded")
    assert [event["type"] for event in uploaded] == ["dev.arca.blob.uploaded"] * 3
    full = events_after(client, None, type="dev.arca.upload.closed", repository="team/*")
    assert len(full) == 2
    assert {e["data"]["repository"] for e in full} == {"team/app"}


def test_after_the_newest_event_is_an_empty_page_with_the_same_cursor(client) -> None:
    _blobs(client, 1)
    newest = events_after(client, None)[-1]["id"]
    page = client.get(f"/api/v1/events?after={newest}").json()
    assert page == {"events": [], "cursor": newest, "more": False}


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("type=bogus", "unknown event type 'bogus'"),
        ("type=manifest.pushed,nope", "unknown event type 'nope'"),
        ("after=not-an-id", "invalid event id 'not-an-id'"),
        ("after=000000000001", "invalid event id"),
        ("n=0", "n must be an integer from 1 to 1000"),
        ("n=1001", "n must be an integer from 1 to 1000"),
        ("n=-1", "n must be an integer from 1 to 1000"),
        ("n=abc", "n must be an integer from 1 to 1000"),
        ("n=99999999999999999999999", "n must be an integer from 1 to 1000"),
    ],
)
def test_bad_queries_get_a_clear_400(client, query: str, needle: str) -> None:
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert error_code(response) == "UNSUPPORTED"
    assert needle in response.json()["errors"][0]["message"]


def test_the_stream_refuses_a_bad_last_event_id(client) -> None:
    response = client.get("/api/v1/events/stream", headers={"Last-Event-ID": "garbage"})
    assert response.status_code == 400
    assert "invalid event id" in response.json()["errors"][0]["message"]


def test_with_the_log_off_pushes_work_and_the_api_says_so(client_factory) -> None:
    client = client_factory(settings=Settings(events=EventSettings(enabled=False)))
    _blobs(client, 1)
    response = client.get("/api/v1/events")
    assert response.status_code == 405
    assert "event log is off" in response.json()["errors"][0]["message"]


def test_unknown_webhook_is_named_in_the_error(client) -> None:
    response = client.get("/api/v1/events/webhooks/nope/dead-letters")
    assert response.status_code == 400
    assert "no webhook named 'nope'" in response.json()["errors"][0]["message"]
    assert client.get("/api/v1/events/webhooks").json() == {"webhooks": []}
