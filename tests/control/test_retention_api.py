"""/api/v1/retention and pins over HTTP: the plan matches its schema, apply is a dry run
unless asked, an unsafe plan needs force, pins keep what they pin and publish events."""

from __future__ import annotations

import dataclasses

from arca.config import RetentionSettings, Settings
from arca.lifecycle.policies import parse_policies
from tests.control.helpers import push_artifact
from tests.control.test_api import conforms

POLICY = {"repositories": ["ci/**"], "group_by": ["family"], "keep_last": 2}


def _settings(fraction: float = 0.9) -> Settings:
    retention = RetentionSettings(policies=parse_policies([POLICY]), max_delete_fraction=fraction)
    return dataclasses.replace(Settings(), retention=retention)


def _push_runs(client, count: int = 4) -> list[str]:
    return [
        push_artifact(client, "ci/app", f"run-{i}", minute=i, labels={"family": "app"})
        for i in range(count)
    ]


def test_plan_then_apply_deletes_only_when_asked(client_factory) -> None:
    client = client_factory(settings=_settings())
    digests = _push_runs(client)
    plan = client.post("/api/v1/retention/plan")
    assert plan.status_code == 200, plan.text
    conforms(plan.json(), "RetentionPlan")
    decided = {a["digest"]: a["action"] for a in plan.json()["repositories"][0]["artifacts"]}
    assert decided == dict(zip(digests, ["delete", "delete", "keep", "keep"], strict=True))

    dry = client.post("/api/v1/retention/apply", json=plan.json())
    assert dry.status_code == 200
    conforms(dry.json(), "RetentionReport")
    assert dry.json()["dry_run"] is True
    assert dry.json()["deleted"] == 2
    assert client.get(f"/v2/ci/app/manifests/{digests[0]}").status_code == 200  # nothing yet

    real = client.post("/api/v1/retention/apply?dry_run=false", json=plan.json())
    assert real.status_code == 200, real.text
    conforms(real.json(), "RetentionReport")
    assert sorted(o["digest"] for o in real.json()["outcomes"]) == sorted(digests[:2])
    for digest in digests[:2]:
        assert client.get(f"/v2/ci/app/manifests/{digest}").status_code == 404
    assert client.get("/v2/ci/app/manifests/run-0").status_code == 404
    assert client.get("/v2/ci/app/manifests/run-3").status_code == 200
    events = client.get("/api/v1/events?type=manifest.deleted").json()["events"]
    assert sorted(e["data"]["digest"] for e in events) == sorted(digests[:2])
    assert {e["data"]["reason"] for e in events} == {"retention"}

    again = client.post("/api/v1/retention/apply?dry_run=false", json=plan.json())
    assert again.json()["deleted"] == 0
    assert again.json()["gone"] == 2  # the same plan twice deletes nothing more


def test_an_unsafe_plan_is_refused_unless_forced(client_factory) -> None:
    client = client_factory(settings=_settings(fraction=0.25))
    digests = _push_runs(client)
    refused = client.post("/api/v1/retention/apply?dry_run=false")
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "ci/app: would delete 2 of 4 artifacts" in error["message"]
    assert client.get(f"/v2/ci/app/manifests/{digests[0]}").status_code == 200
    edited = client.post("/api/v1/retention/plan").json()
    edited["max_delete_fraction"] = 1.0  # a plan file cannot raise the configured limit
    assert client.post("/api/v1/retention/apply?dry_run=false", json=edited).status_code == 403
    dry = client.post("/api/v1/retention/apply")  # a dry run reports, never refuses
    assert dry.status_code == 200
    assert dry.json()["unsafe"] == [
        "ci/app: would delete 2 of 4 artifacts, more than max_delete_fraction = 0.25"
    ]
    forced = client.post("/api/v1/retention/apply?dry_run=false&force=true")
    assert forced.json()["deleted"] == 2
    assert client.post("/api/v1/retention/apply?dry_run=perhaps").status_code == 400
    bad = client.post("/api/v1/retention/apply", content=b'{"version": 9}')
    assert bad.status_code == 400
    assert "not a version 1 retention plan" in bad.json()["errors"][0]["message"]


def test_pins_keep_what_they_pin_and_are_listed(client_factory) -> None:
    client = client_factory(settings=_settings())
    digests = _push_runs(client)
    by_digest = client.put(
        f"/api/v1/repositories/ci/app/-/pins/{digests[0]}", json={"reason": "audit"}
    )
    assert by_digest.status_code == 201, by_digest.text
    conforms(by_digest.json(), "Pin")
    assert client.put("/api/v1/repositories/ci/app/-/pins/run-1").status_code == 201
    unknown = client.put("/api/v1/repositories/ci/app/-/pins/run-99")
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    listed = client.get("/api/v1/pins").json()
    conforms(listed, "PinList")
    assert [(p["reference"], p["reason"]) for p in listed["pins"]] == [
        (digests[0], "audit"),
        ("run-1", ""),
    ]
    conforms(client.get("/api/v1/repositories/ci/app/-/pins").json(), "RepositoryPins")

    plan = client.post("/api/v1/retention/plan").json()
    actions = {a["digest"]: a for a in plan["repositories"][0]["artifacts"]}
    assert [actions[d]["action"] for d in digests] == ["keep"] * 4
    assert actions[digests[0]]["reasons"][0] == {"rule": "pinned", "detail": "pinned: audit"}
    assert actions[digests[1]]["reasons"][0]["detail"] == "pinned run-1"
    assert plan["summary"]["safety"]["pinned"] == 2

    assert client.delete("/api/v1/repositories/ci/app/-/pins/run-1").status_code == 200
    assert client.delete("/api/v1/repositories/ci/app/-/pins/run-1").status_code == 404
    types = [e["type"] for e in client.get("/api/v1/events").json()["events"]]
    assert types.count("dev.arca.pin.added") == 2
    assert types.count("dev.arca.pin.removed") == 1
