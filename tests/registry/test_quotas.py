"""Quotas over HTTP: a push over `max_bytes` or `max_artifacts` is DENIED before its
bytes are stored, nothing already stored is lost, and what fits still goes in."""

from __future__ import annotations

import pytest

from arca.config import ProtectionSettings, QuotaRule, Settings
from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import OCI_MANIFEST, image_manifest, push_blob, put_manifest, sha256

CONFIG = len(b"{}")


def quota(client_factory, driver, **limits):
    rule = QuotaRule(("team/*",), name="team", **limits)
    # Cache off: each check counts what storage holds (the cached path has its own test).
    settings = Settings(quotas=(rule,), protection=ProtectionSettings(usage_cache_seconds=0))
    return client_factory(driver, settings)


def snapshot(driver: MemoryDriver) -> dict[str, tuple[bytes, float]]:
    """Every object with its bytes and write time: a rewrite with equal bytes shows too."""
    return {path: (o.data, o.modified) for path, o in driver._objects.items()}


def denied(response, what: str) -> dict:
    assert response.status_code == 403, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert f"quota {what} of rule 'team'" in error["message"]
    assert "used " in error["message"]
    return error["detail"]


def chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_monolithic_blob_over_max_bytes_is_denied_before_a_byte_is_stored(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=1000)
    push_blob(client, "team/app", b"a" * 600)
    before = snapshot(driver)
    data = b"b" * 500
    detail = denied(
        client.post(f"/v2/team/app/blobs/uploads/?digest={sha256(data)}", content=data), "max_bytes"
    )
    assert detail == {"name": "team/app", "rule": "team", "quota": "max_bytes", "used": 600,
                      "adding": 500, "limit": 1000}  # fmt: skip
    assert snapshot(driver) == before
    # What fits still goes in; a repository no rule names has no limit.
    push_blob(client, "team/app", b"c" * 400)
    push_blob(client, "elsewhere", b"d" * 5000)


def test_a_blob_the_repository_already_has_costs_nothing(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=1000)
    data = b"a" * 900
    push_blob(client, "team/app", data)
    push_blob(client, "team/app", data)  # the same blob again: no new bytes


def test_patch_chunks_are_refused_as_they_accumulate(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=1000)
    start = client.post("/v2/team/app/blobs/uploads/")
    location = start.headers["Location"]
    first = client.patch(location, content=b"a" * 600, headers={"Content-Range": "0-599"})
    assert first.status_code == 202
    before = snapshot(driver)
    second = client.patch(
        first.headers["Location"], content=b"b" * 500, headers={"Content-Range": "600-1099"}
    )
    detail = denied(second, "max_bytes")
    assert detail["adding"] == 1100
    assert detail["used"] == 0
    assert snapshot(driver) == before


def test_a_streamed_chunk_without_length_is_stopped_at_the_quota(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=100_000)
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    response = client.patch(location, content=chunks(b"x" * 300_000))
    denied(response, "max_bytes")
    assert not [p for p in driver._objects if p.startswith("blobs/") or "/_layers/" in p]


def test_closing_an_upload_over_quota_is_denied_and_links_nothing(client_factory):
    """Two sessions that each fit alone: the second to close would pass the limit."""
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=1000)
    one, two = b"a" * 600, b"b" * 600
    locations = []
    for data in (one, two):
        location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
        response = client.patch(location, content=data, headers={"Content-Range": "0-599"})
        locations.append(response.headers["Location"])
    assert client.put(_close(locations[0], one)).status_code == 201
    denied(client.put(_close(locations[1], two)), "max_bytes")
    assert client.head(f"/v2/team/app/blobs/{sha256(two)}").status_code == 404
    assert client.head(f"/v2/team/app/blobs/{sha256(one)}").status_code == 200


def _close(location: str, data: bytes) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={sha256(data)}"


def test_a_mount_over_quota_is_denied(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=1000)
    data = b"m" * 1500
    push_blob(client, "source", data)
    before = snapshot(driver)
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={sha256(data)}&from=source")
    denied(response, "max_bytes")
    assert snapshot(driver) == before


def test_a_manifest_over_max_artifacts_is_denied_before_it_is_stored(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_artifacts=2)
    for n in range(2):
        put_manifest(client, "team/app", f"b{n}", image_manifest(client, "team/app", [b"%d" % n]))
    third = image_manifest(client, "team/app", [b"3"])
    before = snapshot(driver)
    response = client.put(
        "/v2/team/app/manifests/b3", content=third, headers={"Content-Type": OCI_MANIFEST}
    )
    detail = denied(response, "max_artifacts")
    assert detail["used"] == 2
    assert detail["limit"] == 2
    assert snapshot(driver) == before
    # Re-pushing one it has, or tagging it, adds no artifact.
    again = image_manifest(client, "team/app", [b"0"])
    put_manifest(client, "team/app", "b0-again", again)
    # After a delete there is room again.
    digest = client.head("/v2/team/app/manifests/b1").headers["Docker-Content-Digest"]
    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    put_manifest(client, "team/app", "b3", third)


def test_manifest_bytes_count_against_max_bytes(client_factory):
    driver = MemoryDriver()
    client = quota(client_factory, driver, max_bytes=CONFIG + 3 + 50)
    data = image_manifest(client, "team/app", [b"abc"])
    before = snapshot(driver)
    response = client.put(
        "/v2/team/app/manifests/v1", content=data, headers={"Content-Type": OCI_MANIFEST}
    )
    denied(response, "max_bytes")
    assert snapshot(driver) == before


def test_cached_usage_still_refuses_only_after_counting_again(client_factory):
    """With a long cache, another writer's delete is seen at the next refusal."""
    driver = MemoryDriver()
    rule = QuotaRule(("team/*",), max_bytes=1000, name="team")
    settings = Settings(quotas=(rule,), protection=ProtectionSettings(usage_cache_seconds=3600))
    client = client_factory(driver, settings)
    other = client_factory(driver, settings)  # another replica over the same storage
    digest = push_blob(client, "team/app", b"a" * 900)
    assert other.delete(f"/v2/team/app/blobs/{digest}").status_code == 202
    push_blob(client, "team/app", b"b" * 900)  # the cache said 900 used: counted again


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"repositories": ["a"], "max_bytes": -1}, "at least 0"),
        ({"repositories": ["a"]}, "neither max_bytes nor max_artifacts"),
        ({"repositories": ["a"], "max_bytes": "1GB"}, "must be an integer"),
        ({"repositories": ["a"], "max_artifacts": True}, "must be an integer"),
        ({"repositories": "a", "max_bytes": 1}, "non-empty array of globs"),
    ],
)
def test_hostile_quota_config_is_refused_naming_the_key(table, message):
    from arca.config import ConfigError, _build

    with pytest.raises(ConfigError, match=message):
        _build({"quotas": [table]})


def test_two_rules_with_one_name_are_refused():
    from arca.config import ConfigError, _build

    rules = [{"repositories": ["a"], "max_bytes": 1, "name": "x"}] * 2
    with pytest.raises(ConfigError, match="same name"):
        _build({"quotas": rules})
