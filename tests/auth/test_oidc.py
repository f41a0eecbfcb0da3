"""Tokens from an external OIDC issuer, verified with its JWKS served on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth.helpers import auth_client, auth_settings, basic, bearer

ISSUER = "https://ci.example.test"


class Issuer:
    """An OIDC issuer: an RSA key whose JWKS is served over real HTTP on loopback."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "ci-key-1"
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                body = json.dumps({"keys": [{**jwk, "kid": issuer.kid, "alg": "RS256"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, **claims: object) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": "arca", "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, self.key, "RS256", headers={"kid": self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer():
    running = Issuer()
    yield running
    running.close()


@pytest.fixture
def client(tmp_path, issuer):
    oidc = {
        "issuer": ISSUER,
        "jwks_url": issuer.url,
        "audience": "arca",
        "groups_claim": "groups",
        "claim_groups": [{"claim": "repository", "value": "org/app", "groups": ["ci"]}],
    }
    with auth_client(auth_settings(tmp_path, oidc=oidc)) as client:
        yield client


def test_a_ci_token_maps_its_claims_to_groups_and_pushes(client, issuer):
    ci = issuer.token(sub="repo:org/app:ref:refs/heads/main", repository="org/app")
    # as a password at the token endpoint (docker login), and as a bearer token directly
    response = client.get(
        "/auth/token", params={"scope": "repository:team/app:pull,push"}, headers=basic("ci", ci)
    )
    assert response.status_code == 200
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    assert claims["access"][0]["actions"] == ["pull", "push"]
    assert claims["sub"] == "repo:org/app:ref:refs/heads/main"
    assert client.post("/v2/team/app/blobs/uploads/", headers=bearer(ci)).status_code == 202
    assert client.post("/v2/team/app/blobs/uploads/", headers=basic("x", ci)).status_code == 202


def test_groups_come_afresh_from_each_token_never_kept_from_an_earlier_one(client, issuer):
    # CVE-2025-23208: a group removed at the issuer must be gone at the next login
    with_group = issuer.token(sub="u", groups=["ci"])
    without = issuer.token(sub="u", groups=[])
    assert client.get("/v2/team/app/tags/list", headers=bearer(with_group)).status_code == 404
    assert client.get("/v2/team/app/tags/list", headers=bearer(without)).status_code == 403


@pytest.mark.parametrize(
    "change",
    [{"aud": "other"}, {"iss": "https://evil.test"}, {"exp": 1}],
    ids=["audience", "issuer", "expired"],
)
def test_a_token_for_another_audience_or_issuer_or_expired_is_refused(client, issuer, change):
    bad = issuer.token(sub="u", groups=["ci"], **change)
    assert client.get("/v2/team/app/tags/list", headers=bearer(bad)).status_code == 401


def test_a_token_signed_by_another_key_is_refused_after_one_refetch(client, issuer):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "arca", "iat": now, "exp": now + 300, "sub": "u"}
    forged = jwt.encode(claims, other, "RS256", headers={"kid": issuer.kid})
    unknown_kid = jwt.encode(claims, other, "RS256", headers={"kid": "elsewhere"})
    assert client.get("/v2/", headers=bearer(forged)).status_code == 401
    before = issuer.fetches
    assert client.get("/v2/", headers=bearer(unknown_kid)).status_code == 401
    assert client.get("/v2/", headers=bearer(unknown_kid)).status_code == 401
    assert issuer.fetches - before <= 1  # refetches are rate-limited
