"""Signing keys: shared by replicas through storage, rotated from a directory without restart;
robots survive a restart."""

from __future__ import annotations

import os
import time

import jwt

from arca.auth.keys import generate_pem
from arca.storage.drivers.memory import MemoryDriver
from tests.auth.helpers import auth_client, auth_settings, basic, bearer, token


def test_replicas_of_one_store_share_the_key_and_the_robots(tmp_path):
    driver = MemoryDriver()
    settings = auth_settings(tmp_path)
    with auth_client(settings, driver) as one, auth_client(settings, driver) as two:
        issued = token(one, "reader", "repository:team/app:pull")
        assert two.get("/v2/", headers=bearer(issued)).status_code == 200
        secret = one.post(
            "/api/v1/robots",
            json={"name": "ci", "repositories": ["team/**"], "actions": ["pull"]},
            headers=basic("admin"),
        ).json()["secret"]
        robot = basic("robot$ci", secret)
        assert two.get("/v2/team/app/tags/list", headers=robot).status_code == 404  # allowed
    # a restart (a new app over the same storage) keeps the key and the robot
    with auth_client(settings, driver) as restarted:
        assert restarted.get("/v2/", headers=bearer(issued)).status_code == 200
        assert restarted.get("/v2/", headers=basic("robot$ci", secret)).status_code == 200


def test_revocation_reaches_another_replica_within_the_recheck_time(tmp_path):
    driver = MemoryDriver()
    settings = auth_settings(tmp_path, revocation_check_seconds=0)
    with auth_client(settings, driver) as one, auth_client(settings, driver) as two:
        secret = one.post(
            "/api/v1/robots",
            json={"name": "ci", "repositories": ["team/**"], "actions": ["pull"]},
            headers=basic("admin"),
        ).json()["secret"]
        issued = token(one, "robot$ci", "repository:team/app:pull", password=secret)
        assert two.get("/v2/", headers=bearer(issued)).status_code == 200
        assert one.delete("/api/v1/robots/ci", headers=basic("admin")).status_code == 204
        assert two.get("/v2/", headers=bearer(issued)).status_code == 401


def test_keys_rotate_from_a_directory_without_a_restart(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "2026-01.pem").write_bytes(generate_pem())
    settings = auth_settings(tmp_path, signing_keys=str(keys))
    with auth_client(settings) as client:
        auth = client.app.state.auth
        old = token(client, "reader", "repository:team/app:pull")
        old_kid = jwt.get_unverified_header(old)["kid"]
        (keys / "2026-02.pem").write_bytes(generate_pem())
        os.utime(keys, (time.time() + 5, time.time() + 5))
        auth.keys._checked = -float("inf")  # skip the once-a-second recheck wait
        new = token(client, "reader", "repository:team/app:pull")
        new_kid = jwt.get_unverified_header(new)["kid"]
        assert new_kid != old_kid
        assert {key["kid"] for key in client.get("/auth/jwks").json()["keys"]} == {old_kid, new_kid}
        assert client.get("/v2/", headers=bearer(old)).status_code == 200  # both verify
        (keys / "2026-01.pem").unlink()
        auth.keys._checked = -float("inf")
        assert client.get("/v2/", headers=bearer(old)).status_code == 401
        assert client.get("/v2/", headers=bearer(new)).status_code == 200
