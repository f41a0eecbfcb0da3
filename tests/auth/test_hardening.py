"""Failed-login limits, read-only mode, and secrets never shown twice."""

from __future__ import annotations

import pytest

from arca.auth.htpasswd import remove_user, set_user
from arca.auth.ratelimit import FailedLogins
from arca.auth.service import DeniedEvent, LoginEvent
from tests.api.helpers import push_blob
from tests.auth.helpers import auth_client, auth_settings, basic, with_server


def test_failed_logins_are_limited_per_user_with_retry_after(tmp_path):
    settings = auth_settings(tmp_path, failed_login_limit=3, failed_login_window_seconds=600)
    with auth_client(settings) as client:
        for _ in range(3):
            assert client.get("/v2/", headers=basic("reader", "guess")).status_code == 401
        limited = client.get("/v2/", headers=basic("reader", "guess"))
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert 1 <= int(limited.headers["Retry-After"]) <= 600
        # the right password is refused too while limited: guessing learns nothing
        assert client.get("/v2/", headers=basic("reader")).status_code == 429
        token = client.get("/auth/token", headers=basic("reader"))
        assert token.status_code == 429
        form = client.post(
            "/auth/token", data={"grant_type": "password", "username": "reader", "password": "x"}
        )
        assert form.status_code == 429


def test_a_password_remembered_from_earlier_requests_is_refused_while_limited(tmp_path):
    settings = auth_settings(tmp_path, failed_login_limit=3, failed_login_window_seconds=600)
    with auth_client(settings) as client:
        for _ in range(2):  # checked once, then remembered
            assert client.get("/v2/", headers=basic("reader")).status_code == 200
        for _ in range(3):
            assert client.get("/v2/", headers=basic("reader", "guess")).status_code == 401
        assert client.get("/v2/", headers=basic("reader")).status_code == 429
        # and so is everyone else's from that address (the per-address limit)
        assert client.get("/v2/", headers=basic("writer")).status_code == 429


def test_remembered_basic_credentials_end_with_a_password_change_or_removal(tmp_path):
    settings = auth_settings(tmp_path)
    htpasswd = tmp_path / "htpasswd"
    with auth_client(settings) as client:
        auth = client.app.state.auth
        for _ in range(2):
            assert client.get("/v2/", headers=basic("reader")).status_code == 200
            assert client.get("/v2/", headers=basic("writer")).status_code == 200
        set_user(htpasswd, "reader", "a new one", rounds=4)
        remove_user(htpasswd, "writer")
        auth.users.refresh(force=True)  # as the next stat of the file would
        assert client.get("/v2/", headers=basic("reader")).status_code == 401
        assert client.get("/v2/", headers=basic("reader", "a new one")).status_code == 200
        assert client.get("/v2/", headers=basic("writer")).status_code == 401


def test_the_address_limit_covers_guesses_spread_over_many_names():
    limiter = FailedLogins(limit=3, window=60)
    for name in ("a", "b", "c"):
        assert limiter.retry_after((f"user:{name}", "address:10.0.0.1"), now=0) is None
        limiter.failed((f"user:{name}", "address:10.0.0.1"), now=0)
    assert limiter.retry_after(("user:d", "address:10.0.0.1"), now=1) == 59
    assert limiter.retry_after(("user:d", "address:10.0.0.2"), now=1) is None
    assert limiter.retry_after(("user:d", "address:10.0.0.1"), now=61) is None


@pytest.mark.parametrize("auth_on", [True, False])
def test_read_only_refuses_writes_and_serves_reads(tmp_path, auth_on):
    settings = auth_settings(tmp_path) if auth_on else auth_settings(tmp_path, enabled=False)
    with auth_client(settings) as client:
        client.headers.update(basic("admin"))
        digest = push_blob(client, "team/app", b"data")
    with auth_client(with_server(settings, read_only=True), client.app.state.registry.driver) as ro:
        ro.headers.update(basic("admin"))
        for method, url in [
            ("POST", "/v2/team/app/blobs/uploads/"),
            ("PUT", "/v2/team/app/manifests/v1"),
            ("DELETE", f"/v2/team/app/blobs/{digest}"),
            ("DELETE", "/api/v1/repositories/team/app/artifacts?label=a=b"),
        ]:
            response = ro.request(method, url)
            assert response.status_code == 405, (method, url)
            assert "read-only" in response.json()["errors"][0]["message"]
        assert ro.get(f"/v2/team/app/blobs/{digest}").content == b"data"


def test_a_robot_secret_is_shown_once_and_stored_only_hashed(tmp_path):
    with auth_client(auth_settings(tmp_path)) as client:
        created = client.post(
            "/api/v1/robots",
            json={"name": "ci", "repositories": ["builds/**"], "actions": ["pull", "push"]},
            headers=basic("builder"),
        ).json()
        secret = created["secret"]
        listed = client.get("/api/v1/robots", headers=basic("builder")).json()["robots"]
        assert [robot["name"] for robot in listed] == ["ci"]
        assert secret not in str(listed)
        stored = b"".join(  # the memory driver behind the checked one
            obj.data
            for path, obj in client.app.state.registry.driver.inner._objects.items()
            if path.startswith("auth/")
        )
        assert secret.encode() not in stored
        # another user neither sees nor revokes it (same answer as no robot)
        assert client.get("/api/v1/robots", headers=basic("reader")).json()["robots"] == []
        assert client.delete("/api/v1/robots/ci", headers=basic("reader")).status_code == 400
        assert client.delete("/api/v1/robots/none", headers=basic("reader")).status_code == 400
        assert client.get(
            "/v2/builds/x/tags/list", headers=basic("robot$ci", secret)
        ).status_code in (
            200,
            404,
        )


def test_logins_and_refusals_reach_the_hooks_once_each(tmp_path):
    with auth_client(auth_settings(tmp_path)) as client:
        auth = client.app.state.auth
        logins: list[LoginEvent] = []
        denied: list[DeniedEvent] = []
        auth.hooks.login.append(logins.append)
        auth.hooks.denied.append(denied.append)
        for _ in range(3):  # one password check, then remembered: one login, not three
            assert client.get("/v2/", headers=basic("reader")).status_code == 200
        assert client.get("/v2/", headers=basic("reader", "wrong")).status_code == 401
        assert (
            client.delete("/v2/team/app/manifests/v1", headers=basic("reader")).status_code == 403
        )
        assert client.get("/v2/team/app/tags/list").status_code == 401
    assert [(e.user, e.ok) for e in logins] == [("reader", True), ("reader", False)]
    assert [(e.user, e.repository, e.action, e.status) for e in denied] == [
        ("", "", "login", 401),  # the wrong password, on /v2/
        ("reader", "team/app", "delete", 403),
        ("", "team/app", "pull", 401),
    ]
