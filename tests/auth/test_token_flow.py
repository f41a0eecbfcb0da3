"""The Docker/OCI token flow: challenge, token endpoint (GET and OAuth2 POST), JWKS, Basic."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.api.helpers import image_manifest, push_blob, put_manifest
from tests.auth.helpers import PASSWORD, auth_client, auth_settings, basic, bearer, token


@pytest.fixture
def client(tmp_path):
    with auth_client(auth_settings(tmp_path)) as client:
        yield client


def test_v2_answers_anonymous_with_a_bearer_challenge(client):
    response = client.get("/v2/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="http://registry.test/auth/token",service="arca"'
    )


def test_a_repository_route_challenges_with_the_scope_it_needs(client):
    response = client.get("/v2/team/app/manifests/v1")
    assert response.status_code == 401
    assert 'scope="repository:team/app:pull"' in response.headers["WWW-Authenticate"]
    response = client.post("/v2/team/app/blobs/uploads/")
    assert 'scope="repository:team/app:pull,push"' in response.headers["WWW-Authenticate"]


def test_the_token_endpoint_grants_the_intersection_of_request_and_policy(client):
    response = client.get(
        "/auth/token",
        params={"service": "arca", "scope": "repository:team/app:pull,push,delete"},
        headers=basic("writer"),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60
    assert "refresh_token" not in body
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    assert claims["sub"] == "writer"
    assert claims["aud"] == "arca"


def test_a_token_lets_the_client_push_and_pull(client):
    headers = bearer(token(client, "writer", "repository:team/app:pull,push"))
    client.headers.update(headers)
    manifest = image_manifest(client, "team/app", [b"layer"])
    digest = put_manifest(client, "team/app", "v1", manifest)
    response = client.get("/v2/team/app/manifests/v1")
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest


def test_basic_credentials_work_directly_on_v2(client):
    client.headers.update(basic("writer"))
    assert client.get("/v2/").status_code == 200
    push_blob(client, "team/app", b"data")
    assert client.get("/v2/team/app/tags/list").json() == {"name": "team/app", "tags": []}


def test_wrong_passwords_and_unknown_users_get_the_same_answer(client):
    wrong = client.get("/v2/", headers=basic("writer", "nope"))
    unknown = client.get("/v2/", headers=basic("nobody", "nope"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
    assert (
        client.get("/auth/token", headers=basic("nobody", "x")).json()
        == client.get("/auth/token", headers=basic("writer", "x")).json()
    )


def test_anonymous_gets_a_token_for_public_pulls_only(client):
    anonymous = token(client, None, "repository:public/docs:pull,push", "repository:team/app:pull")
    claims = jwt.decode(anonymous, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "public/docs", "actions": ["pull"]}]
    assert client.get("/v2/", headers=bearer(anonymous)).status_code == 200
    assert client.get("/v2/public/docs/tags/list").status_code == 404  # allowed, none yet
    assert client.get("/v2/team/app/tags/list", headers=bearer(anonymous)).status_code == 401


def test_oauth2_password_and_refresh_grants(client):
    response = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "reader",
            "password": PASSWORD,
            "service": "arca",
            "client_id": "test",
            "scope": "repository:team/app:pull repository:team/other:pull",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {entry["name"] for entry in claims["access"]} == {"team/app", "team/other"}
    refresh = body["refresh_token"]
    # a refresh token is good at the token endpoint only, never on /v2
    assert client.get("/v2/", headers=bearer(refresh)).status_code == 401
    again = client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "scope": "repository:x:pull",
        },
    )
    assert again.status_code == 200
    assert again.json()["scope"] == ""  # reader has nothing on x
    bad = client.post("/auth/token", data={"grant_type": "password", "username": "reader"})
    assert bad.status_code == 401


def test_the_get_form_hands_out_a_refresh_token_when_asked(client):
    response = client.get(
        "/auth/token", params={"offline_token": "true", "service": "arca"}, headers=basic("reader")
    )
    assert "refresh_token" in response.json()


@pytest.mark.parametrize(
    "scope",
    ["repository:team/app:pull,write", "repository:team/app:", "blob:x:pull", "registry:other:*"],
)
def test_the_token_endpoint_refuses_unknown_actions_and_types(client, scope):
    response = client.get("/auth/token", params={"scope": scope}, headers=basic("admin"))
    assert response.status_code in (200, 400)
    if scope.endswith(":"):
        assert response.json()["scope"] == ""  # asking for nothing gets nothing
    else:
        assert response.status_code == 400
        assert "token" not in response.json()


def test_jwks_publishes_the_key_tokens_verify_with(client):
    keys = client.get("/auth/jwks").json()["keys"]
    issued = token(client, "reader", "repository:team/app:pull")
    kid = jwt.get_unverified_header(issued)["kid"]
    (key,) = [k for k in keys if k["kid"] == kid]
    public = jwt.PyJWK(key).key
    claims = jwt.decode(issued, public, algorithms=["ES256"], audience="arca")
    assert claims["iss"] == "arca"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["exp"] > time.time()


def test_the_authenticated_name_is_put_in_the_request_state(tmp_path):
    seen = []
    settings = auth_settings(tmp_path)
    from arca.app import create_app
    from arca.storage.drivers.memory import MemoryDriver

    app = create_app(settings, MemoryDriver())
    inner = app.build_middleware_stack

    def spy_stack():
        stack = inner()

        async def spy(scope, receive, send):
            await stack(scope, receive, send)
            if scope["type"] == "http":
                seen.append(scope.get("state", {}).get("user"))

        return spy

    app.build_middleware_stack = spy_stack  # type: ignore[method-assign]  # a spy on the stack
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        client.get("/v2/", headers=basic("reader"))
        client.get("/v2/")
    assert seen == ["reader", ""]


def test_a_token_without_a_scope_its_subject_could_get_asks_for_a_better_one(client):
    narrow = token(client, "writer", "repository:team/app:pull")
    response = client.post("/v2/team/app/blobs/uploads/", headers=bearer(narrow))
    assert response.status_code == 403  # RFC 6750 §3.1
    challenge = response.headers["WWW-Authenticate"]
    assert 'scope="repository:team/app:pull,push"' in challenge
    assert 'error="insufficient_scope"' in challenge
    wider = token(client, "writer", "repository:team/app:pull,push")
    assert client.post("/v2/team/app/blobs/uploads/", headers=bearer(wider)).status_code == 202
    # what the subject can never get is a plain 403, no challenge
    refused = client.delete("/v2/team/app/manifests/v1", headers=bearer(wider))
    assert refused.status_code == 403
    assert "WWW-Authenticate" not in refused.headers
