"""Every route, method and principal on repositories matching different globs.

Each answer must be the expected allow / 401 / 403, and a refused request must
neither read nor write anything of the repositories (a counting driver and a
storage snapshot before and after each refused request).
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from arca.auth.policy import ACTIONS, ADMIN
from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import OCI_MANIFEST, image_manifest, put_manifest
from tests.auth.helpers import auth_client, auth_settings, basic, bearer, token
from tests.doubles import CountingDriver

REPOSITORIES = ("team/app", "public/docs", "builds/nightly", "other/secret")
LAYER = b"layer bytes"
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
NEW = b"new blob"
NEW_DIGEST = "sha256:" + hashlib.sha256(NEW).hexdigest()
PULL, PUSH, DELETE = "pull", "push", "delete"

# What the policy of tests/auth/helpers.py (plus the robots made below) gives each one.
RIGHTS: dict[str, dict[str, set[str]]] = {
    "anonymous": {"public/docs": {PULL}},
    "reader": {"team/app": {PULL}, "public/docs": {PULL}},
    "writer": {"team/app": {PULL, PUSH}, "public/docs": {PULL, PUSH}},
    "deleter": {"team/app": {PULL, DELETE}, "public/docs": {PULL}},
    "admin": {name: set(ACTIONS) for name in REPOSITORIES},
    "robot": {"builds/nightly": {PULL, PUSH}},
    "expired": {},
    "revoked": {},
    "other-repository": {"other/secret": set(ACTIONS)},
    "narrowed": {"team/app": {PULL}},
}
# For token principals: what the subject's policy allows (a token lacking it: 403 with an
# insufficient_scope challenge, so the client fetches a better token).
SUBJECT = {"other-repository": "admin", "narrowed": "writer"}
PRINCIPALS = tuple(RIGHTS)


def routes(name: str, manifest_digest: str, sessions: list[str]) -> list[tuple]:
    """(method, url, action, body, headers), reads first, deletes last."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "size": 2,
                "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            },
            "layers": [],
            "annotations": {"matrix": name},
        }
    ).encode()
    api = f"/api/v1/repositories/{name}"
    return [
        ("GET", f"/v2/{name}/manifests/v1", PULL, None, {}),
        ("HEAD", f"/v2/{name}/manifests/v1", PULL, None, {}),
        (
            "GET",
            f"/v2/{name}/manifests/v1",
            PULL,
            None,
            {"Accept": "application/vnd.arca.artifact.v1+cbor"},
        ),
        ("GET", f"/v2/{name}/blobs/{LAYER_DIGEST}", PULL, None, {}),
        ("HEAD", f"/v2/{name}/blobs/{LAYER_DIGEST}", PULL, None, {}),
        ("GET", f"/v2/{name}/tags/list", PULL, None, {}),
        ("GET", f"/v2/{name}/referrers/{manifest_digest}", PULL, None, {}),
        ("GET", f"{api}/artifacts", PULL, None, {}),
        ("GET", f"{api}/latest", PULL, None, {}),
        ("GET", f"{api}/-/latest", PULL, None, {}),
        ("GET", f"{api}/artifacts/v1", PULL, None, {}),
        ("POST", f"{api}/artifacts/v1/verify", PULL, None, {}),
        ("GET", f"{api}/-/pins", PULL, None, {}),
        ("PUT", f"{api}/-/pins/v1", ADMIN, None, {}),
        ("DELETE", f"{api}/-/pins/v1", ADMIN, None, {}),
        ("GET", f"/v2/{name}/blobs/uploads/{sessions[0]}", PUSH, None, {}),
        ("PATCH", f"/v2/{name}/blobs/uploads/{sessions[0]}", PUSH, NEW, {}),
        ("PUT", f"/v2/{name}/blobs/uploads/{sessions[0]}?digest={NEW_DIGEST}", PUSH, None, {}),
        ("DELETE", f"/v2/{name}/blobs/uploads/{sessions[1]}", PUSH, None, {}),
        ("POST", f"/v2/{name}/blobs/uploads/", PUSH, None, {}),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={NEW_DIGEST}", PUSH, NEW, {}),
        (
            "POST",
            f"/v2/{name}/blobs/uploads/?mount={LAYER_DIGEST}&from=other/secret",
            PUSH,
            None,
            {},
        ),
        ("PUT", f"/v2/{name}/manifests/v2", PUSH, manifest, {"Content-Type": OCI_MANIFEST}),
        (
            "POST",
            f"{api}/artifacts/v1/labels",
            PUSH,
            b'{"set": {"status": "pass"}}',
            {"Content-Type": "application/json"},
        ),
        ("DELETE", f"/v2/{name}/manifests/v2", DELETE, None, {}),
        ("DELETE", f"{api}/artifacts?label=a=b", DELETE, None, {}),
        ("DELETE", f"/v2/{name}/blobs/{LAYER_DIGEST}", DELETE, None, {}),
        ("DELETE", f"/v2/{name}/manifests/{manifest_digest}", DELETE, None, {}),
        ("POST", f"/v2/{name}/manifests/v1", None, None, {}),  # no such method: 405 for all
    ]


def seed(client) -> dict[str, tuple[str, list[str]]]:
    client.headers.update(basic("admin"))
    seeded = {}
    for name in REPOSITORIES:
        digest = put_manifest(client, name, "v1", image_manifest(client, name, [LAYER]))
        sessions = []
        for _ in range(2):
            response = client.post(f"/v2/{name}/blobs/uploads/")
            assert response.status_code == 202
            sessions.append(response.headers["Docker-Upload-UUID"])
        seeded[name] = (digest, sessions)
    del client.headers["Authorization"]
    return seeded


def robot(client, name, repositories, actions) -> str:
    response = client.post(
        "/api/v1/robots",
        json={"name": name, "repositories": repositories, "actions": actions, "expires": "1d"},
        headers=basic("admin"),
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


def credentials(client, principal: str) -> dict[str, str]:
    auth = client.app.state.auth
    if principal == "anonymous":
        return {}
    if principal in ("reader", "writer", "deleter", "admin"):
        return basic(principal)
    if principal == "robot":
        return basic("robot$ci", robot(client, "ci", ["builds/**"], [PULL, PUSH]))
    if principal == "expired":
        scopes = [f"repository:{name}:pull,push,delete" for name in REPOSITORIES]
        from arca.auth.tokens import parse_scopes

        issued = auth.tokens.issue(
            "admin", "user", parse_scopes(scopes), 300, now=time.time() - 3600
        )
        return bearer(issued)
    if principal == "revoked":
        secret = robot(client, "gone", ["team/**"], [PULL])
        issued = token(client, "robot$gone", "repository:team/app:pull", password=secret)
        assert client.delete("/api/v1/robots/gone", headers=basic("admin")).status_code == 204
        return bearer(issued)
    if principal == "other-repository":
        return bearer(token(client, "admin", "repository:other/secret:*"))
    if principal == "narrowed":
        return bearer(token(client, "writer", "repository:team/app:pull"))
    raise AssertionError(principal)


def expected(principal: str, name: str, action: str | None) -> str:
    if action is None:
        return "405"
    if principal in ("expired", "revoked"):
        return "401"
    if action in RIGHTS[principal].get(name, set()):
        return "allow"
    if principal == "anonymous":
        return "401"
    if principal in SUBJECT:
        subject = RIGHTS[SUBJECT[principal]].get(name, set())
        return "403+challenge" if action in subject else "403"
    return "403"


EVENT_LOG = "events/log/"


def only_refusals(recorded: dict[str, bytes]) -> bool:
    """New objects are event-log commits holding `auth.*` events only."""
    for path, data in recorded.items():
        if not path.startswith(EVENT_LOG):
            return False
        types = {event["type"] for event in json.loads(data)["events"]}
        if not types <= {"dev.arca.auth.denied", "dev.arca.auth.login"}:
            return False
    return bool(recorded)


def outcome(status: int) -> str:
    return {401: "401", 403: "403", 405: "405"}.get(status, "allow")


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_route_answers_each_principal_as_the_policy_says(tmp_path, principal):
    memory = MemoryDriver()
    driver = CountingDriver(memory)
    with auth_client(auth_settings(tmp_path), driver) as client:
        seeded = seed(client)
        headers = credentials(client, principal)
        wrong: list[tuple[object, ...]] = []
        for name in REPOSITORIES:
            digest, sessions = seeded[name]
            for method, url, action, body, extra in routes(name, digest, sessions):
                want = expected(principal, name, action)
                before = {path: obj.data for path, obj in memory._objects.items()}
                driver.calls.clear()
                response = client.request(method, url, content=body, headers={**headers, **extra})
                got = outcome(response.status_code)
                if got == "403" and "insufficient_scope" in response.headers.get(
                    "WWW-Authenticate", ""
                ):
                    got = "403+challenge"
                if got != want:
                    wrong.append((method, url, want, response.status_code, response.text[:120]))
                    continue
                if want in ("401", "403", "403+challenge"):
                    # Nothing read or written but the refusal's own record: its
                    # `auth.denied` event appended to the log.
                    touched = [
                        c
                        for c in driver.calls
                        if not c[1].startswith("auth/") and not c[1].startswith(EVENT_LOG)
                    ]
                    after = {path: obj.data for path, obj in memory._objects.items()}
                    recorded = {p: d for p, d in after.items() if p not in before}
                    unchanged = {p: d for p, d in after.items() if p in before}
                    if touched or unchanged != before or not only_refusals(recorded):
                        wrong.append((method, url, "untouched storage", touched[:3]))
                    others = [r for r in REPOSITORIES if r != name]
                    said = response.text + json.dumps(dict(response.headers))
                    if any(other in said for other in others):
                        wrong.append((method, url, "names another repository", said[:200]))
                if want == "401":
                    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
        assert not wrong, "\n".join(map(str, wrong))


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_the_base_and_the_catalog_answer_each_principal(tmp_path, principal):
    with auth_client(auth_settings(tmp_path)) as client:
        seed(client)
        headers = credentials(client, principal)
        base = client.get("/v2/", headers=headers)
        catalog = client.get("/v2/_catalog", headers=headers)
    if principal in ("expired", "revoked"):
        assert (base.status_code, catalog.status_code) == (401, 401)
        return
    if principal == "anonymous":  # no credentials: the challenge, then an anonymous token
        assert (base.status_code, catalog.status_code) == (401, 401)
        assert 'scope="registry:catalog:*"' in catalog.headers["WWW-Authenticate"]
        with auth_client(auth_settings(tmp_path)) as client:
            seed(client)
            headers = bearer(token(client, None, "registry:catalog:*"))
            catalog = client.get("/v2/_catalog", headers=headers)
    else:
        assert base.status_code == 200
    assert catalog.status_code == 200
    pullable = sorted(name for name, rights in RIGHTS[principal].items() if PULL in rights)
    assert catalog.json()["repositories"] == pullable


def test_retention_plan_and_apply_need_admin_on_every_repository(tmp_path):
    """They act on every repository a policy governs: admin on some is not enough."""
    with auth_client(auth_settings(tmp_path)) as client:
        seed(client)
        for principal in ("reader", "writer", "other-repository"):
            headers = credentials(client, principal)
            for path in ("/api/v1/retention/plan", "/api/v1/retention/apply"):
                response = client.post(path, headers=headers)
                assert response.status_code == 403, (principal, path, response.text)
                assert "needs admin on every repository" in response.text
        assert client.post("/api/v1/retention/plan").status_code == 401
        allowed = client.post("/api/v1/retention/plan", headers=basic("admin"))
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["repositories"] == []  # no policy: nothing governed
