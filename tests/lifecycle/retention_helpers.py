"""Artifacts with labels pushed through the registry services (no HTTP), for retention."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from arca.config import RetentionSettings, Settings
from arca.control.artifacts import ArtifactControl
from arca.formats.artifact import Artifact, ArtifactFile, encode_artifact, to_oci_manifest
from arca.formats.digest import Digest
from arca.lifecycle.policies import parse_policies
from arca.lifecycle.retention import Retention
from arca.lifecycle.trash import DeletedTags
from arca.registry.events import DomainEvent
from arca.registry.registry import Registry
from arca.storage.drivers.filesystem import FilesystemDriver
from tests.lifecycle.images import push_blob

BASE = datetime(2026, 1, 1, tzinfo=UTC)


class Recorder:
    """A follower keeping every event, to count what an apply published."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)

    def of(self, kind: str) -> list[Any]:
        return [event for event in self.events if event.type == kind]


def settings_with(policies: list[dict[str, Any]], **retention: Any) -> Settings:
    base = Settings()
    section = RetentionSettings(policies=parse_policies(policies), **retention)
    gc = dataclasses.replace(base.gc, grace_seconds=0, untagged="delete")
    return dataclasses.replace(base, retention=section, gc=gc)


def open_registry(
    root: Path | str, settings: Settings
) -> tuple[Registry, ArtifactControl, Recorder]:
    """A registry wired as the server wires it: index, deleted-tag memory, a recorder."""
    driver = FilesystemDriver(str(root))
    registry = Registry(driver, settings)
    control = ArtifactControl.attach(registry)
    registry.events.followers.append(DeletedTags(driver))
    recorder = Recorder()
    registry.events.followers.append(recorder)
    return registry, control, recorder


def retention(registry: Registry, control: ArtifactControl, **options: Any) -> Retention:
    return Retention(registry, control.index, registry.settings, **options)


async def push_run(
    registry: Registry,
    name: str,
    tag: str | None,
    *,
    minute: int,
    labels: dict[str, str],
    payload: bytes | None = None,
    extra_tags: tuple[str, ...] = (),
) -> Digest:
    """A CBOR artifact created `minute` minutes after BASE, one file of its own."""
    data = payload or f"{name} {tag} {minute} {sorted(labels.items())}".encode()
    await push_blob(registry, name, data)
    artifact = Artifact(
        name=name,
        version=tag or f"m{minute}",
        created=BASE + timedelta(minutes=minute),
        labels=labels,
        metadata=None,
        files=(
            ArtifactFile(
                "out.txt", "text/plain", len(data), Digest.of(data), Digest.of(data, "blake3")
            ),
        ),
    )
    document = encode_artifact(artifact)
    if tag is None:  # untagged: by the digest of the OCI manifest the view maps to
        tag = str(Digest.of(to_oci_manifest(artifact, document)))
    result = await registry.artifacts.put(name, tag, document, extra_tags)
    return result.digest
