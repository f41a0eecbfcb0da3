"""One test per class of access bug other registries shipped (docs/auth.md lists them)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from arca.auth.htpasswd import remove_user
from tests.api.helpers import image_manifest, put_manifest
from tests.auth.helpers import auth_client, auth_settings, basic, bearer, token

LAYER = b"private layer"


@pytest.fixture
def client(tmp_path):
    with auth_client(auth_settings(tmp_path)) as client:
        client.headers.update(basic("admin"))
        put_manifest(client, "other/secret", "v1", image_manifest(client, "other/secret", [LAYER]))
        put_manifest(client, "team/app", "v1", image_manifest(client, "team/app", [b"app layer"]))
        put_manifest(client, "public/docs", "v1", image_manifest(client, "public/docs", [b"docs"]))
        del client.headers["Authorization"]
        yield client


def linked(client, name, digest) -> bool:
    return client.head(f"/v2/{name}/blobs/{digest}", headers=basic("admin")).status_code == 200


# -- CVE-2023-2253: unbounded n on the catalog and tag lists ------------------------------


def test_a_huge_n_on_catalog_and_tags_is_capped_not_allocated(client):
    huge = "9" * 18  # a count far beyond any page, within the digits a count may have
    catalog = client.get(f"/v2/_catalog?n={huge}", headers=basic("admin"))
    assert catalog.status_code == 200
    assert catalog.json()["repositories"] == ["other/secret", "public/docs", "team/app"]
    tags = client.get(f"/v2/team/app/tags/list?n={huge}", headers=basic("reader"))
    assert tags.json()["tags"] == ["v1"]


# -- CVE-2024-39897: a blob mounted from a repository the caller cannot read --------------


@pytest.mark.parametrize(
    "query",
    ["from=other/secret", "", "from=team/app"],
    ids=["from-unreadable", "without-from", "from-itself"],
)
def test_a_mount_of_a_blob_the_caller_cannot_read_is_a_plain_upload(client, query):
    digest = _digest(LAYER)
    response = client.post(
        f"/v2/team/app/blobs/uploads/?mount={digest}&{query}", headers=basic("writer")
    )
    assert response.status_code == 202  # a normal session, no hint the blob exists
    assert not linked(client, "team/app", digest)
    unknown = client.post(
        f"/v2/team/app/blobs/uploads/?mount={_digest(b'nothing')}&{query}",
        headers=basic("writer"),
    )
    assert unknown.status_code == response.status_code
    assert set(unknown.headers) == set(response.headers)


def test_a_mount_from_a_readable_repository_links_the_blob(client):
    digest = _digest(b"docs")
    response = client.post(
        f"/v2/team/app/blobs/uploads/?mount={digest}&from=public/docs", headers=basic("writer")
    )
    assert response.status_code == 201
    assert linked(client, "team/app", digest)
    other = _digest(b"app layer")
    anywhere = client.post(f"/v2/public/docs/blobs/uploads/?mount={other}", headers=basic("writer"))
    assert anywhere.status_code == 201  # without from: found in team/app, which writer reads


def _digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- CVE-2026-61833: DELETE authorised as push; CVE-2026-41888: tag delete -----------------


def test_delete_is_never_authorised_as_push(client):
    digest = client.head("/v2/team/app/manifests/v1", headers=basic("admin")).headers[
        "Docker-Content-Digest"
    ]
    for reference in (digest, "v1"):  # by digest and by tag
        response = client.delete(f"/v2/team/app/manifests/{reference}", headers=basic("writer"))
        assert response.status_code == 403
    push_token = token(client, "writer", "repository:team/app:pull,push,delete")
    assert jwt.decode(push_token, options={"verify_signature": False})["access"][0]["actions"] == [
        "pull",
        "push",
    ]
    response = client.delete("/v2/team/app/manifests/v1", headers=bearer(push_token))
    assert response.status_code == 403
    blob = client.delete(f"/v2/team/app/blobs/{_digest(b'app layer')}", headers=basic("writer"))
    assert blob.status_code == 403
    listed = client.get("/v2/team/app/tags/list", headers=basic("reader")).json()
    assert listed["tags"] == ["v1"]
    assert client.get("/v2/team/app/manifests/v1", headers=basic("reader")).status_code == 200


def test_a_deleter_may_delete_a_tag(client):
    assert client.delete("/v2/team/app/manifests/v1", headers=basic("deleter")).status_code == 202
    assert client.get("/v2/team/app/tags/list", headers=basic("reader")).json()["tags"] == []


# -- CVE-2025-24976 and kin: key confusion ------------------------------------------------


def _claims(**extra) -> dict:
    now = int(time.time())
    return {
        "iss": "arca",
        "sub": "admin",
        "aud": "arca",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "x",
        "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}],
        "arca": {"kind": "user", "use": "access", "groups": [], "rid": ""},
        **extra,
    }


def _our_kid(client) -> str:
    return client.get("/auth/jwks").json()["keys"][0]["kid"]


def _unsigned(header: dict, claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def forged_tokens(client) -> dict[str, str]:
    kid = _our_kid(client)
    foreign = ec.generate_private_key(ec.SECP256R1())
    foreign_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(foreign.public_key()))
    public_pem = (
        jwt.PyJWK(client.get("/auth/jwks").json()["keys"][0])
        .key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )
    hmac_key = public_pem.encode()
    return {
        "foreign-key-our-kid": jwt.encode(_claims(), foreign, "ES256", headers={"kid": kid}),
        "foreign-key-embedded-jwk": jwt.encode(
            _claims(), foreign, "ES256", headers={"kid": kid, "jwk": foreign_jwk}
        ),
        "kid-not-ours": jwt.encode(_claims(), foreign, "ES256", headers={"kid": "not-ours"}),
        "alg-none": _unsigned({"alg": "none", "kid": kid, "typ": "JWT"}, _claims()),
        "hmac-with-our-public-key": _hs256(_claims(), hmac_key, kid),
        "no-kid": jwt.encode(_claims(), foreign, "ES256"),
    }


def _hs256(claims: dict, key: bytes, kid: str) -> str:
    import hashlib
    import hmac

    def part(value: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing = part({"alg": "HS256", "kid": kid, "typ": "JWT"}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(key, signing, hashlib.sha256).digest())
    return (signing + b"." + signature.rstrip(b"=")).decode()


@pytest.mark.parametrize(
    "kind",
    [
        "foreign-key-our-kid",
        "foreign-key-embedded-jwk",
        "kid-not-ours",
        "alg-none",
        "hmac-with-our-public-key",
        "no-kid",
    ],
)
def test_a_token_not_signed_by_our_key_with_its_algorithm_is_refused(client, kind):
    forged = forged_tokens(client)[kind]
    response = client.get("/v2/team/app/manifests/v1", headers=bearer(forged))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_for_another_audience_or_issuer_is_refused(client):
    auth = client.app.state.auth
    key = auth.keys.signing
    for claims in (_claims(aud="elsewhere"), _claims(iss="someone"), _claims(exp=1)):
        forged = jwt.encode(claims, key.private, "ES256", headers={"kid": key.kid})
        assert client.get("/v2/", headers=bearer(forged)).status_code == 401
    genuine = jwt.encode(_claims(), key.private, "ES256", headers={"kid": key.kid})
    assert client.get("/v2/team/app/manifests/v1", headers=bearer(genuine)).status_code == 200


# -- a token replayed after revocation ----------------------------------------------------


def test_a_robot_token_and_secret_stop_working_once_revoked(client):
    created = client.post(
        "/api/v1/robots",
        json={"name": "ci", "repositories": ["team/**"], "actions": ["pull"], "expires": "1h"},
        headers=basic("admin"),
    ).json()
    secret = created["secret"]
    issued = token(client, "robot$ci", "repository:team/app:pull", password=secret)
    assert client.get("/v2/team/app/manifests/v1", headers=bearer(issued)).status_code == 200
    assert client.delete("/api/v1/robots/ci", headers=basic("admin")).status_code == 204
    assert client.get("/v2/team/app/manifests/v1", headers=bearer(issued)).status_code == 401
    direct = client.get("/v2/team/app/manifests/v1", headers=basic("robot$ci", secret))
    assert direct.status_code == 401


def test_a_users_tokens_stop_working_when_the_user_is_removed(client, tmp_path):
    issued = token(client, "reader", "repository:team/app:pull")
    assert client.get("/v2/team/app/manifests/v1", headers=bearer(issued)).status_code == 200
    remove_user(tmp_path / "htpasswd", "reader")
    client.app.state.auth.users.refresh(force=True)
    assert client.get("/v2/team/app/manifests/v1", headers=bearer(issued)).status_code == 401


# -- Harbor CVE-2019-16919 / #18636: robots never exceed their creator --------------------


def test_a_robot_cannot_be_given_more_than_its_creator_holds(client):
    response = client.post(
        "/api/v1/robots",
        json={"name": "x", "repositories": ["team/**"], "actions": ["pull", "delete"]},
        headers=basic("writer"),
    )
    assert response.status_code == 403
    made = client.post(
        "/api/v1/robots",
        json={"name": "w", "repositories": ["team/**"], "actions": ["pull", "push"]},
        headers=basic("writer"),
    )
    assert made.status_code == 201
    secret = made.json()["secret"]
    child = client.post(
        "/api/v1/robots",
        json={"name": "child", "repositories": ["**"], "actions": ["pull"]},
        headers=basic("robot$w", secret),
    )
    assert child.status_code == 403
    # the robot's own grant is bounded by its creator now: widening the glob gives nothing
    assert (
        client.get("/v2/other/secret/tags/list", headers=basic("robot$w", secret)).status_code
        == 403
    )


def test_a_robot_loses_its_rights_with_its_creator(client, tmp_path):
    made = client.post(
        "/api/v1/robots",
        json={"name": "w", "repositories": ["team/**"], "actions": ["pull"]},
        headers=basic("writer"),
    ).json()
    robot = basic("robot$w", made["secret"])
    assert client.get("/v2/team/app/tags/list", headers=robot).status_code == 200
    remove_user(tmp_path / "htpasswd", "writer")
    client.app.state.auth.users.refresh(force=True)
    assert client.get("/v2/team/app/tags/list", headers=robot).status_code == 403


# -- private names leaking through errors or headers (GHCR X-Ms-Copy-Source) --------------


@pytest.mark.parametrize("user", [None, "reader"])
def test_a_private_repository_answers_exactly_like_a_missing_one(client, user):
    headers = basic(user) if user else {}
    for path in ("manifests/v1", "tags/list", f"blobs/{_digest(LAYER)}"):
        present = client.get(f"/v2/other/secret/{path}", headers=headers)
        missing = client.get(f"/v2/other/secrex/{path}", headers=headers)
        assert present.status_code == missing.status_code == (401 if user is None else 403)
        assert present.content == missing.content
        strip = {"date", "www-authenticate", "x-request-id"}  # the id is per request
        assert {k: v for k, v in present.headers.items() if k not in strip} == {
            k: v for k, v in missing.headers.items() if k not in strip
        }
    if user is None:  # the catalog asks for credentials: an anonymous token will do
        headers = bearer(token(client, None, "registry:catalog:*"))
    catalog = client.get("/v2/_catalog", headers=headers).json()["repositories"]
    assert catalog == (["public/docs"] if user is None else ["public/docs", "team/app"])


# -- IDOR (Harbor CVE-2022-31667 class): an id from a repository one may not touch ----------


def test_an_upload_session_of_another_repository_cannot_be_used_through_ones_own(client):
    started = client.post("/v2/other/secret/blobs/uploads/", headers=basic("admin"))
    session_id = started.headers["Docker-Upload-UUID"]
    own = f"/v2/team/app/blobs/uploads/{session_id}"
    writer = basic("writer")  # may push to team/app, nothing on other/secret
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        url = f"{own}?digest={_digest(b'x')}" if method == "PUT" else own
        response = client.request(method, url, content=b"x", headers=writer)
        assert response.status_code == 404, method
        assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    status = client.get(f"/v2/other/secret/blobs/uploads/{session_id}", headers=basic("admin"))
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"
    # and robots of other creators are not revocable by name (same answer as none)
    created = client.post(
        "/api/v1/robots",
        json={"name": "adm", "repositories": ["other/**"], "actions": ["pull"]},
        headers=basic("admin"),
    )
    assert created.status_code == 201
    assert client.delete("/api/v1/robots/adm", headers=writer).status_code == 400
    assert (
        client.get(
            "/v2/other/secret/tags/list", headers=basic("robot$adm", created.json()["secret"])
        ).status_code
        == 200
    )
