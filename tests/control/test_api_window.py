"""/api/v1 time windows (`since`, `until`) and short digests (`/-/digests/<prefix>`)."""

from __future__ import annotations

import asyncio

import pytest

from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.control.helpers import error_code, listing, push_artifact
from tests.control.test_api import conforms

ARTIFACTS = "/api/v1/repositories/reports/artifacts"


@pytest.fixture
def pushed(client):
    """Versions v0..v4 created at BASE + 0..4 minutes (BASE is 2026-01-01T00:00:00Z)."""
    return {
        f"v{i}": push_artifact(client, "reports", f"v{i}", minute=i, labels={"t": "a"})
        for i in range(5)
    }


def versions(body):
    return [a["version"] for a in body["artifacts"]]


def test_since_and_until_are_inclusive_and_work_with_labels_and_cursors(client, pushed):
    window = {"since": "2026-01-01T00:01:00Z", "until": "2026-01-01T00:03:00Z"}
    assert versions(listing(client, "reports", **window)) == ["v3", "v2", "v1"]
    assert versions(listing(client, "reports", "t=a", **window)) == ["v3", "v2", "v1"]
    page = client.get(ARTIFACTS, params={**window, "limit": 2})
    conforms(page.json(), "ArtifactList")
    assert "since=2026-01-01T00%3A01%3A00Z" in page.headers["Link"]
    rest = client.get(ARTIFACTS, params={**window, "cursor": page.json()["cursor"]}).json()
    assert versions(rest) == ["v1"]
    offset = client.get(ARTIFACTS, params={"since": "2026-01-01T01:03:30+01:00"}).json()
    assert versions(offset) == ["v4"]  # 00:03:30Z rounds up to 00:03:31 (seconds)
    latest = client.get(
        "/api/v1/repositories/reports/-/latest", params={"until": "2026-01-01T00:02:59Z"}
    )
    assert latest.json()["version"] == "v2"
    none = client.get(
        "/api/v1/repositories/reports/-/latest", params={"since": "2027-01-01T00:00:00Z"}
    )
    assert none.status_code == 404


def test_a_delete_by_label_keeps_to_its_window(client, pushed):
    gone = client.delete(ARTIFACTS, params={"label": "t=a", "until": "2026-01-01T00:01:00Z"})
    assert sorted(gone.json()["deleted"]) == sorted([pushed["v0"], pushed["v1"]])
    assert versions(listing(client, "reports")) == ["v4", "v3", "v2"]


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", "2026-01-01T00:00:00", "1700000000"])
def test_a_time_without_an_offset_or_not_rfc3339_is_refused(client, pushed, value):
    response = client.get(ARTIFACTS, params={"since": value})
    assert response.status_code == 400
    assert error_code(response) == "UNSUPPORTED"
    assert "RFC 3339" in response.json()["errors"][0]["message"]


def test_a_short_digest_resolves_when_one_artifact_has_it(client, pushed):
    digest = pushed["v2"]
    for prefix in (digest[7:19], digest[:19], digest[7:]):
        response = client.get(f"/api/v1/repositories/reports/-/digests/{prefix}")
        assert response.status_code == 200, response.text
        conforms(response.json(), "DigestResolution")
        assert response.json() == {"name": "reports", "digest": digest}


def test_a_short_digest_is_unknown_or_ambiguous_with_the_right_error(client_factory):
    driver = MemoryDriver()
    client = client_factory(driver)
    push_artifact(client, "reports", "v1")
    missing = client.get("/api/v1/repositories/reports/-/digests/0000000000")
    assert (missing.status_code, error_code(missing)) == (404, "MANIFEST_UNKNOWN")
    unknown = client.get("/api/v1/repositories/nope/-/digests/abcd")
    assert (unknown.status_code, error_code(unknown)) == (404, "NAME_UNKNOWN")
    for hex_ in ("abcd1" + "0" * 59, "abcd2" + "0" * 59):  # two index objects sharing a prefix
        asyncio.run(driver.put(f"{layout.index_digests('reports')}/sha256-{hex_}", b"{}"))
    ambiguous = client.get("/api/v1/repositories/reports/-/digests/abcd")
    assert (ambiguous.status_code, error_code(ambiguous)) == (400, "UNSUPPORTED")
    assert "ambiguous" in ambiguous.json()["errors"][0]["message"]
    one = client.get("/api/v1/repositories/reports/-/digests/abcd2")
    assert one.json()["digest"] == "sha256:abcd2" + "0" * 59
    bad = client.get("/api/v1/repositories/reports/-/digests/ABC!")
    assert (bad.status_code, error_code(bad)) == (400, "UNSUPPORTED")
