"""With auth on, the event log says who: logins (checked afresh), refusals, and the
`actor` of every change a signed-in request makes. Only an admin reads the access
layer's own events."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from arca.config import GcSettings
from tests.api.helpers import OCI_MANIFEST, image_manifest
from tests.auth.helpers import PASSWORD, auth_client, auth_settings, basic


def events(client: Any, user: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", params={"n": "1000"}, headers=basic(user))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def short(event: dict[str, Any]) -> str:
    return str(event["type"]).removeprefix("dev.arca.")


def push(client: Any, user: str, name: str, tag: str, layers: list[bytes]) -> str:
    headers = basic(user)

    class SignedIn:  # image_manifest pushes the blobs through `post`, as this user
        def post(self, *args: Any, **kwargs: Any) -> Any:
            return client.post(*args, **kwargs, headers=headers)

    manifest = image_manifest(SignedIn(), name, layers)  # type: ignore[arg-type]
    response = client.put(
        f"/v2/{name}/manifests/{tag}",
        content=manifest,
        headers={**headers, "Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def test_logins_refusals_and_the_actor_of_every_change_are_in_the_log(tmp_path: Path) -> None:
    with auth_client(auth_settings(tmp_path)) as client:
        digest = push(client, "writer", "team/app", "v1", [b"layer one"])
        assert client.get("/v2/", headers=basic("reader", "wrong")).status_code == 401
        refused = client.delete(f"/v2/team/app/manifests/{digest}", headers=basic("reader"))
        assert refused.status_code == 403
        assert client.get("/v2/team/app/tags/list").status_code == 401
        deleted = client.delete(f"/v2/team/app/manifests/{digest}", headers=basic("deleter"))
        assert deleted.status_code == 202

        seen = events(client, "admin")
        logins = [(e["data"]["user"], e["data"]["ok"]) for e in seen if short(e) == "auth.login"]
        # One fresh password check per user, however many requests it signed
        # (writer sent 4), and the failed one.
        assert sorted(logins) == sorted(
            [
                ("writer", True),
                ("reader", False),
                ("reader", True),
                ("deleter", True),
                ("admin", True),
            ]
        )
        failed = next(e for e in seen if short(e) == "auth.login" and not e["data"]["ok"])
        assert failed["data"]["reason"] == "invalid credentials"
        assert failed["data"]["actor"] is None
        assert failed["data"]["address"]
        refusals = [
            (e["data"]["user"], e["data"]["repository"], e["data"]["action"], e["data"]["status"])
            for e in seen
            if short(e) == "auth.denied"
        ]
        assert ("reader", "team/app", "delete", 403) in refusals
        assert ("", "team/app", "pull", 401) in refusals
        actors = {(short(e), e["data"]["actor"]) for e in seen if not short(e).startswith("auth.")}
        assert actors == {
            ("blob.uploaded", "writer"),
            ("upload.closed", "writer"),
            ("manifest.pushed", "writer"),
            ("tag.moved", "writer"),
            ("tag.deleted", "deleter"),
            ("manifest.deleted", "deleter"),
        }

        # A reader sees the repository's changes, never who signed in or was refused.
        as_reader = events(client, "reader")
        assert {short(e) for e in as_reader} == {t for t, _ in actors}


def test_a_collection_run_through_the_api_records_the_admin_who_ran_it(tmp_path: Path) -> None:
    settings = dataclasses.replace(
        auth_settings(tmp_path), gc=GcSettings(grace_seconds=1, untagged="delete")
    )
    with auth_client(settings) as client:
        digest = push(client, "writer", "team/app", "v1", [b"soon garbage"])
        assert (
            client.delete(f"/v2/team/app/manifests/{digest}", headers=basic("deleter")).status_code
            == 202
        )
        time.sleep(1.2)
        refused = client.post("/api/v1/gc", headers=basic("writer"))
        assert refused.status_code == 403
        response = client.post("/api/v1/gc", headers=basic("admin", PASSWORD))
        assert response.status_code == 200, response.text
        run = response.json()
        assert run["swept"]

        seen = events(client, "admin")
        [summary] = [e for e in seen if short(e) == "gc.swept"]
        assert summary["data"]["runId"] == run["run_id"]
        assert summary["data"]["actor"] == "admin"
        assert summary["data"]["bytes"] == run["bytes_swept"]
        swept = [e for e in seen if e["data"].get("reason") == "gc"]
        assert {short(e) for e in swept} == {"blob.unlinked"}  # the manifest went by DELETE
        assert {e["data"]["actor"] for e in swept} == {"admin"}
        assert not [e for e in events(client, "reader") if short(e) == "gc.swept"]
