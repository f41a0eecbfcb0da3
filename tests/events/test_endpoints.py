"""Every endpoint that changes state appends exactly the events a user expects."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from arca.config import EventSettings, Settings
from arca.formats.artifact import encode_artifact
from tests.api.helpers import OCI_MANIFEST, image_manifest, push_blob, put_manifest, sha256
from tests.api.test_artifacts import make_artifact, push_files, put_document
from tests.events.helpers import events_after, head_id

LAYER = b"layer bytes"


def _manifest(client: TestClient, name: str = "team/app", layer: bytes = LAYER) -> bytes:
    return image_manifest(client, name, [layer])


def _push(client: TestClient, tag: str = "v1", layer: bytes = LAYER) -> str:
    return put_manifest(client, "team/app", tag, _manifest(client, layer=layer))


def _open_upload(client: TestClient) -> str:
    response = client.post("/v2/team/app/blobs/uploads/")
    assert response.status_code == 202
    location: str = response.headers["Location"]
    return location


Case = tuple[Callable[[TestClient], Any], Callable[[TestClient, Any], Any], list[dict[str, Any]]]


def _nothing(client: TestClient) -> None:
    return None


def _act_monolithic(client: TestClient, _: Any) -> None:
    push_blob(client, "team/app", b"blob")


def _act_chunked(client: TestClient, _: Any) -> None:
    location = _open_upload(client)
    response = client.patch(location, content=b"ab", headers={"Content-Range": "0-1"})
    assert response.status_code == 202
    response = client.put(f"{location}?digest={sha256(b'abc')}", content=b"c")
    assert response.status_code == 201


def _act_cancel(client: TestClient, location: str) -> None:
    assert client.delete(location).status_code == 204


def _act_mount(client: TestClient, digest: str) -> None:
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=other/repo")
    assert response.status_code == 201


def _act_blob_delete(client: TestClient, digest: str) -> None:
    assert client.delete(f"/v2/team/app/blobs/{digest}").status_code == 202


def _act_push_tag(client: TestClient, data: bytes) -> None:
    put_manifest(client, "team/app", "v1", data)


def _act_push_tags(client: TestClient, data: bytes) -> None:
    response = client.put(
        f"/v2/team/app/manifests/{sha256(data)}?tag=a&tag=b",
        content=data,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201


def _act_push_digest(client: TestClient, data: bytes) -> None:
    put_manifest(client, "team/app", sha256(data), data)


def _act_move_tag(client: TestClient, data: bytes) -> None:
    put_manifest(client, "team/app", "v1", data)


def _act_repush(client: TestClient, data: bytes) -> None:
    put_manifest(client, "team/app", "v1", data)


def _act_delete_tag(client: TestClient, _: str) -> None:
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202


def _act_delete_digest(client: TestClient, digest: str) -> None:
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202


def _act_delete_by_label(client: TestClient, _: str) -> None:
    response = client.delete("/api/v1/repositories/team/app/artifacts?label=run=7")
    assert response.status_code == 200, response.text


def _setup_labelled(client: TestClient) -> str:
    data = image_manifest(client, "team/app", [LAYER], annotations={"dev.arca.label.run": "7"})
    return put_manifest(client, "team/app", "v1", data)


def _setup_two_tags(client: TestClient) -> str:
    digest = _push(client, "v1")
    _push(client, "latest")
    return digest


def _setup_moved(client: TestClient) -> bytes:
    _push(client, "v1")
    return _manifest(client, layer=b"other layer")


def _setup_mount(client: TestClient) -> str:
    return push_blob(client, "other/repo", b"shared")


def _setup_pushed_data(client: TestClient) -> bytes:
    data = _manifest(client)
    put_manifest(client, "team/app", "v1", data)
    return data


CASES: dict[str, Case] = {
    "monolithic blob upload": (
        _nothing,
        _act_monolithic,
        [
            {"type": "blob.uploaded", "digest": sha256(b"blob"), "size": 4},
            {"type": "upload.closed", "digest": sha256(b"blob"), "size": 4},
        ],
    ),
    "chunked blob upload": (
        _nothing,
        _act_chunked,
        [
            {"type": "blob.uploaded", "digest": sha256(b"abc"), "size": 3},
            {"type": "upload.closed", "digest": sha256(b"abc"), "size": 3},
        ],
    ),
    "upload cancelled": (_open_upload, _act_cancel, [{"type": "upload.cancelled"}]),
    "blob mounted": (
        _setup_mount,
        _act_mount,
        [{"type": "blob.linked", "digest": sha256(b"shared"), "from": "other/repo"}],
    ),
    "blob deleted": (
        lambda c: push_blob(c, "team/app", b"doomed"),
        _act_blob_delete,
        [{"type": "blob.unlinked", "digest": sha256(b"doomed")}],
    ),
    "manifest pushed by tag": (
        _manifest,
        _act_push_tag,
        [
            {"type": "manifest.pushed", "tags": ["v1"], "mediaType": OCI_MANIFEST},
            {"type": "tag.moved", "tag": "v1", "previous": None},
        ],
    ),
    "manifest pushed by digest with ?tag=": (
        _manifest,
        _act_push_tags,
        [
            {"type": "manifest.pushed", "tags": ["a", "b"]},
            {"type": "tag.moved", "tag": "a"},
            {"type": "tag.moved", "tag": "b"},
        ],
    ),
    "manifest pushed by digest": (
        _manifest,
        _act_push_digest,
        [{"type": "manifest.pushed", "tags": []}],
    ),
    "tag moved to another manifest": (
        _setup_moved,
        _act_move_tag,
        [{"type": "manifest.pushed", "tags": ["v1"]}, {"type": "tag.moved", "tag": "v1"}],
    ),
    "same manifest pushed again": (
        _setup_pushed_data,
        _act_repush,
        [{"type": "manifest.pushed", "tags": ["v1"]}],
    ),
    "tag deleted": (
        lambda c: _push(c, "v1"),
        _act_delete_tag,
        [{"type": "tag.deleted", "tag": "v1"}],
    ),
    "manifest deleted by digest, with its tags": (
        _setup_two_tags,
        _act_delete_digest,
        [
            {"type": "tag.deleted", "tag": "latest"},
            {"type": "tag.deleted", "tag": "v1"},
            {"type": "manifest.deleted", "tags": ["latest", "v1"]},
        ],
    ),
    "artifacts deleted by label": (
        _setup_labelled,
        _act_delete_by_label,
        [{"type": "tag.deleted", "tag": "v1"}, {"type": "manifest.deleted", "tags": ["v1"]}],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_change_appends_exactly_its_events(client: TestClient, case: str) -> None:
    setup, act, expected = CASES[case]
    prepared = setup(client)
    before = head_id(client)
    act(client, prepared)
    found = events_after(client, before)
    assert [event["type"] for event in found] == [f"dev.arca.{e['type']}" for e in expected]
    for event, wanted in zip(found, expected, strict=True):
        assert event["specversion"] == "1.0"
        assert event["source"] == "/arca"
        assert event["data"]["repository"] == "team/app"
        assert event["data"]["actor"] is None
        for key, value in wanted.items():
            if key != "type":
                assert event["data"][key] == value, (key, event)


def test_a_pushed_manifest_event_carries_digest_size_labels_and_subject(client) -> None:
    subject = _push(client, "base")
    data = image_manifest(
        client,
        "team/app",
        [b"report"],
        artifactType="application/vnd.test.report",
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
        annotations={
            "dev.arca.label.status": "pass",
            "dev.arca.label.run_id": "1042",
        },
    )
    before = head_id(client)
    digest = put_manifest(client, "team/app", "r1", data)
    pushed = events_after(client, before)[0]
    assert pushed["subject"] == f"team/app@{digest}"
    assert pushed["data"]["digest"] == digest
    assert pushed["data"]["size"] == len(data)
    assert pushed["data"]["artifactType"] == "application/vnd.test.report"
    assert pushed["data"]["subject"] == subject
    assert pushed["data"]["labels"] == {"status": "pass", "run_id": "1042"}


def test_reads_append_nothing_and_pulls_are_off_by_default(client) -> None:
    digest = _push(client, "v1")
    before = head_id(client)
    client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    client.head(f"/v2/team/app/manifests/{digest}")
    client.get("/v2/team/app/tags/list")
    client.get("/api/v1/repositories/team/app/artifacts")
    assert events_after(client, before) == []


def test_pull_events_when_sampled_at_one(client_factory) -> None:
    client = client_factory(settings=Settings(events=EventSettings(pull_sample_rate=1.0)))
    digest = _push(client, "v1")
    before = head_id(client)
    client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    client.head("/v2/team/app/manifests/v1")  # a HEAD is not a pull
    [pulled] = events_after(client, before)
    assert pulled["type"] == "dev.arca.manifest.pulled"
    assert pulled["data"] == {
        "repository": "team/app",
        "digest": digest,
        "reference": "v1",
        "actor": None,
    }


def test_a_cbor_artifact_put_is_one_manifest_push_with_its_labels(client) -> None:
    push_files(client, "builds/nightly")
    document = encode_artifact(make_artifact())
    before = head_id(client)
    response = put_document(client, document, "1042", "builds/nightly")
    assert response.status_code == 201, response.text
    found = events_after(client, before)
    assert [event["type"] for event in found] == ["dev.arca.manifest.pushed", "dev.arca.tag.moved"]
    assert found[0]["data"]["labels"] == make_artifact().labels
    assert found[0]["data"]["artifactType"] == "application/vnd.arca.artifact.v1+cbor"


def test_events_are_json_serialisable_cloudevents(client) -> None:
    _push(client, "v1")
    for event in events_after(client, None):
        assert json.loads(json.dumps(event)) == event
        assert event["datacontenttype"] == "application/json"
        assert event["time"].endswith("Z")
