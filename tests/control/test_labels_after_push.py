"""Labels after the push through /api/v1: folded into listings, `latest` and the record,
the digest unchanged, an event published, hostile bodies refused, deletes refolded."""

from __future__ import annotations

from typing import Any

from arca.config import ProtectionSettings, QuotaRule, Settings
from arca.storage.drivers.memory import MemoryDriver
from tests.control.helpers import error_code, listing, push_artifact, push_oci
from tests.events.helpers import events_after


def label(client, name: str, reference: str, **body):
    return client.post(f"/api/v1/repositories/{name}/artifacts/{reference}/labels", json=body)


def test_a_label_change_moves_latest_with_status_pass(client):
    first = push_artifact(client, "ci", "r1", labels={"status": "pass"}, minute=1)
    second = push_artifact(client, "ci", "r2", labels={"status": "fail"}, minute=2)
    assert (
        client.get("/api/v1/repositories/ci/-/latest?label=status=pass").json()["digest"] == first
    )
    response = label(client, "ci", "r2", set={"status": "pass"})
    assert response.status_code == 201, response.text
    assert response.json()["digest"] == second
    assert response.json()["labels"] == {"status": "pass"}
    latest = client.get("/api/v1/repositories/ci/-/latest?label=status=pass").json()
    assert latest["digest"] == second
    assert [a["digest"] for a in listing(client, "ci", "status=fail")["artifacts"]] == []
    # The pushed manifest is untouched: the same digest, the same bytes.
    head = client.head(
        "/v2/ci/manifests/r2", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    assert head.headers["Docker-Content-Digest"] == second


def test_labels_of_an_oras_pushed_artifact_can_change_too(client):
    digest = push_oci(client, "reports", "v1", {"dev.arca.label.status": "fail"}, b"report")
    assert label(client, "reports", digest, set={"status": "pass"}).status_code == 201
    assert listing(client, "reports", "status=pass")["artifacts"][0]["digest"] == digest


def test_labelling_publishes_an_event_with_the_labels_now(client):
    push_artifact(client, "ci", "r1", labels={"status": "fail", "owner": "me"})
    label(client, "ci", "r1", set={"status": "pass"}, remove=["owner"])
    events = [e for e in events_after(client, None) if e["type"] == "dev.arca.artifact.labelled"]
    assert len(events) == 1
    data = events[0]["data"]
    assert data["set"] == {"status": "pass"}
    assert data["removed"] == ["owner"]
    assert data["labels"] == {"status": "pass"}


def test_deleting_a_label_artifact_brings_the_earlier_labels_back(client):
    push_artifact(client, "ci", "r1", labels={"status": "fail"})
    changed = label(client, "ci", "r1", set={"status": "pass"}).json()
    assert client.delete(f"/v2/ci/manifests/{changed['label_digest']}").status_code == 202
    record = client.get("/api/v1/repositories/ci/artifacts/r1").json()
    assert record["labels"] == {"status": "fail"}
    assert listing(client, "ci", "status=fail")["artifacts"]


def test_hostile_label_requests_are_refused_and_change_nothing(client):
    push_artifact(client, "ci", "r1", labels={"status": "fail"})
    url = "/api/v1/repositories/ci/artifacts/r1/labels"
    for body in (b"not json", b"[]", b'{"set": {"a": 1}}', b'{"remove": "a"}', b'{"other": {}}'):
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body, response.text)
    hostile: list[dict[str, Any]] = [
        {"set": {"bad key": "x"}},
        {"set": {}},
        {"set": {"a": "\x00"}},
        {"set": {"a": "x"}, "remove": ["a"]},
        {"set": {"a": "x" * 1025}},
    ]
    for changes in hostile:
        response = label(client, "ci", "r1", **changes)
        assert response.status_code == 400, (changes, response.text)
        assert error_code(response) == "MANIFEST_INVALID"
    assert label(client, "ci", "nope", set={"a": "b"}).status_code == 404
    assert client.get("/api/v1/repositories/ci/artifacts/r1").json()["labels"] == {"status": "fail"}


def test_a_label_artifact_counts_bytes_but_not_artifacts(client_factory):
    rule = QuotaRule(("ci",), max_artifacts=1, name="one")
    settings = Settings(quotas=(rule,), protection=ProtectionSettings(usage_cache_seconds=0))
    client = client_factory(MemoryDriver(), settings)
    push_artifact(client, "ci", "r1", labels={"status": "fail"})
    assert label(client, "ci", "r1", set={"status": "pass"}).status_code == 201
