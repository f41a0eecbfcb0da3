"""Immutable tags over HTTP: moving or removing a protected tag is DENIED, naming the rule,
and nothing stored changes; re-pushing the same digest is fine."""

from __future__ import annotations

import asyncio
import json

import pytest

from arca.config import ImmutabilityRule, Settings
from arca.errors import TagImmutable
from arca.registry.registry import Registry
from arca.storage.drivers.memory import MemoryDriver
from tests.api.helpers import OCI_MANIFEST, image_manifest, put_manifest

RULES = (
    ImmutabilityRule(("releases/**",), ("^v[0-9]",), "release-tags"),
    ImmutabilityRule(("*",), ("^stable$",), "stable"),
)


def protected(client_factory, driver=None):
    return client_factory(driver or MemoryDriver(), Settings(immutability=RULES))


def snapshot(driver: MemoryDriver) -> dict[str, tuple[bytes, float]]:
    """Every object with its bytes and write time: a rewrite with equal bytes shows too."""
    return {path: (o.data, o.modified) for path, o in driver._objects.items()}


def denied(response, rule: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert rule in error["message"]
    assert "immutable" in error["message"]
    assert error["detail"]["rule"] == rule


def test_moving_an_immutable_tag_is_denied_and_changes_nothing(client_factory):
    driver = MemoryDriver()
    client = protected(client_factory, driver)
    first = image_manifest(client, "releases/app", [b"one"])
    digest = put_manifest(client, "releases/app", "v1.0", first)
    second = image_manifest(client, "releases/app", [b"two"])
    before = snapshot(driver)
    response = client.put(
        "/v2/releases/app/manifests/v1.0", content=second, headers={"Content-Type": OCI_MANIFEST}
    )
    denied(response, "release-tags")
    assert snapshot(driver) == before
    assert client.head("/v2/releases/app/manifests/v1.0").headers["Docker-Content-Digest"] == digest


def test_repushing_the_same_digest_to_an_immutable_tag_succeeds(client_factory):
    client = protected(client_factory)
    data = image_manifest(client, "releases/app", [b"one"])
    digest = put_manifest(client, "releases/app", "v1.0", data)
    assert put_manifest(client, "releases/app", "v1.0", data) == digest


def test_a_tag_no_rule_names_still_moves(client_factory):
    client = protected(client_factory)
    put_manifest(client, "releases/app", "dev", image_manifest(client, "releases/app", [b"a"]))
    second = put_manifest(
        client, "releases/app", "dev", image_manifest(client, "releases/app", [b"b"])
    )
    assert client.head("/v2/releases/app/manifests/dev").headers["Docker-Content-Digest"] == second
    # The same tag name in a repository no rule names is mutable too.
    put_manifest(client, "other/app", "v1", image_manifest(client, "other/app", [b"a"]))
    put_manifest(client, "other/app", "v1", image_manifest(client, "other/app", [b"b"]))


def test_deleting_an_immutable_tag_or_its_manifest_is_denied(client_factory):
    driver = MemoryDriver()
    client = protected(client_factory, driver)
    digest = put_manifest(client, "app", "stable", image_manifest(client, "app", [b"one"]))
    before = snapshot(driver)
    denied(client.delete("/v2/app/manifests/stable"), "stable")
    denied(client.delete(f"/v2/app/manifests/{digest}"), "stable")
    assert snapshot(driver) == before
    assert client.get("/v2/app/manifests/stable").status_code == 200


def test_an_extra_tag_on_a_push_is_checked_too(client_factory):
    driver = MemoryDriver()
    client = protected(client_factory, driver)
    put_manifest(client, "app", "stable", image_manifest(client, "app", [b"one"]))
    data = image_manifest(client, "app", [b"two"])
    before = snapshot(driver)
    response = client.put(
        "/v2/app/manifests/build-2?tag=stable", content=data, headers={"Content-Type": OCI_MANIFEST}
    )
    denied(response, "stable")
    assert snapshot(driver) == before
    assert client.get("/v2/app/manifests/build-2").status_code == 404


def test_api_v1_delete_by_label_refuses_an_artifact_with_an_immutable_tag(client_factory):
    client = protected(client_factory)
    data = image_manifest(client, "app", [b"one"], annotations={"dev.arca.label.status": "fail"})
    put_manifest(client, "app", "stable", data)
    response = client.delete("/api/v1/repositories/app/artifacts?label=status=fail")
    denied(response, "stable")
    assert client.get("/v2/app/manifests/stable").status_code == 200


@pytest.mark.anyio
async def test_two_pushes_racing_to_create_an_immutable_tag_have_exactly_one_winner():
    """Both pass the early check (here: skipped, as when both run it before either
    sets the tag); the tag is created only if absent, so one is refused and the tag
    names the winner."""
    driver = MemoryDriver()
    registry = Registry(driver, Settings(immutability=RULES))

    async def both_pass(*args: object) -> None:
        return None

    registry.tags.check_move = both_pass  # type: ignore[method-assign, assignment]
    config = b"{}"
    await registry.blobs.put_small(config, _digest(config))
    await registry.blobs.link("app", _digest(config))
    manifests = [_manifest(config, f"build-{n}") for n in range(2)]
    for _ in range(20):
        results = await asyncio.gather(
            *(registry.manifests.put("app", "stable", m, OCI_MANIFEST) for m in manifests),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1, results
        assert len(losers) == 1, results
        assert isinstance(losers[0], TagImmutable)
        assert await registry.tags.resolve("app", "stable") == winners[0].digest
        # Reset: the test itself may remove the tag behind the rule's back.
        await driver.delete("repositories/app/_manifests/tags/stable")


def _digest(data: bytes):
    from arca.formats.digest import Digest

    return Digest.of(data)


def _manifest(config: bytes, title: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": str(_digest(config)),
                "size": len(config),
            },
            "layers": [],
            "annotations": {"org.opencontainers.image.title": title},
        }
    ).encode()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"repositories": ["a"], "tags": ["("]}, "not a regular expression"),
        ({"repositories": ["a"], "tags": []}, "non-empty array"),
        ({"repositories": [], "tags": ["x"]}, "non-empty array of globs"),
        ({"repositories": ["/a"], "tags": ["x"]}, "cannot match"),
        ({"repositories": ["a"], "tags": ["x"], "colour": 1}, "unknown key"),
        ({"repositories": ["a"], "tags": "x"}, "non-empty array"),
    ],
)
def test_hostile_immutability_config_is_refused_naming_the_key(table, message):
    from arca.config import ConfigError, _build

    with pytest.raises(ConfigError, match=message):
        _build({"immutability": [table]})
