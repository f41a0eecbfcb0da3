"""htpasswd users: bcrypt only, re-read when the file changes, edited atomically."""

from __future__ import annotations

import bcrypt

from arca.auth import htpasswd
from arca.auth.htpasswd import HtpasswdFile, remove_user, set_user


def test_a_user_added_can_log_in_and_a_wrong_password_cannot(tmp_path):
    path = tmp_path / "htpasswd"
    assert set_user(path, "alice", "s3cret", rounds=4) is True
    users = HtpasswdFile(path)
    assert users.check("alice", "s3cret")
    assert not users.check("alice", "S3cret")
    assert not users.check("mallory", "s3cret")
    assert path.read_text().startswith("alice:$2y$04$")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_file_is_reloaded_when_it_changes(tmp_path):
    path = tmp_path / "htpasswd"
    set_user(path, "alice", "one", rounds=4)
    users = HtpasswdFile(path, recheck_seconds=0)
    assert users.names() == ["alice"]
    set_user(path, "bob", "two", rounds=4)
    set_user(path, "alice", "three", rounds=4)
    assert users.names() == ["alice", "bob"]
    assert users.check("alice", "three")
    assert not users.check("alice", "one")
    assert remove_user(path, "bob") is True
    assert remove_user(path, "bob") is False
    assert not users.check("bob", "two")


def test_a_missing_file_means_no_users_until_it_appears(tmp_path):
    path = tmp_path / "later"
    users = HtpasswdFile(path, recheck_seconds=0)
    assert users.names() == []
    set_user(path, "alice", "pw", rounds=4)
    assert users.check("alice", "pw")


def test_hashes_other_than_bcrypt_are_ignored(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(
        "# comment\n"
        "plain:secret\n"
        "md5:$apr1$abc$def\n"
        "sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n"
        f"ok:{htpasswd.hash_password('pw', 4)}\n"
        "broken line\n"
    )
    users = HtpasswdFile(path)
    assert users.names() == ["ok"]
    assert not users.check("plain", "secret")


def test_every_bcrypt_prefix_is_understood(tmp_path):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()  # $2b$
    path = tmp_path / "htpasswd"
    path.write_text(f"b:{hashed}\na:$2a${hashed[4:]}\ny:$2y${hashed[4:]}\n")
    users = HtpasswdFile(path)
    assert users.names() == ["a", "b", "y"]
    assert all(users.check(name, "pw") for name in ("a", "b", "y"))
