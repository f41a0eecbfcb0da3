"""The artifact workflows behind /api/v1: list, latest, one record, verify, delete by label.

One service over the registry and the index, so each /api/v1 handler calls one method.
Deletes go through `ManifestStore.delete`, so tags, referrers and the index (an event
follower) stay consistent with every other way of deleting a manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from arca.control.entries import IndexEntry
from arca.control.index import EVERY_TIME, ArtifactIndex, IndexPage, TimeWindow, check_filters
from arca.control.verify import Verification, Verifier
from arca.errors import ManifestInvalid, ManifestUnknown, NameUnknown, ParameterInvalid
from arca.formats.artifact import Artifact, decode_artifact, labels_from_annotations
from arca.formats.digest import Digest
from arca.formats.labels import (
    EMPTY,
    LABELS_ARTIFACT_TYPE,
    check_labels,
    fold,
    label_manifest,
    label_time,
)
from arca.formats.manifest import parse_manifest
from arca.registry.events import ArtifactLabelled
from arca.registry.registry import Registry
from arca.registry.tags import repository_exists


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One artifact in full: its CBOR view, the manifest it is a view of, its tags."""

    name: str
    digest: Digest
    media_type: str
    artifact_type: str | None
    manifest_size: int
    document_digest: Digest
    document_size: int
    tags: list[str]
    created: int
    """Whole seconds since the epoch: the artifact's own, else when it was first seen."""
    pushed: bool
    """True when `created` is the first-seen time."""
    artifact: Artifact
    labels: Mapping[str, str] = field(default_factory=dict)
    """The labels now: the pushed ones (`artifact.labels`) with label artifacts applied."""

    @property
    def size(self) -> int:
        return sum(file.size for file in self.artifact.files)


@dataclass(frozen=True, slots=True)
class LabelResult:
    name: str
    digest: Digest
    """The labelled artifact (unchanged)."""
    label_digest: Digest
    """The label artifact that records the change."""
    labels: dict[str, str]
    """The artifact's labels now."""


class ArtifactControl:
    def __init__(self, registry: Registry, index: ArtifactIndex) -> None:
        self._registry = registry
        self.index = index
        self._verifier = Verifier(registry.blobs, registry.manifests, registry.artifacts)

    @classmethod
    def attach(cls, registry: Registry) -> ArtifactControl:
        """The control plane over `registry`, its index following the registry's events."""
        index = ArtifactIndex(
            registry.driver, registry.blobs, registry.tags, registry.manifests, registry.referrers
        )
        registry.events.followers.append(index)
        return cls(registry, index)

    async def page(
        self,
        name: str,
        filters: Mapping[str, str],
        limit: int,
        cursor: str | None,
        window: TimeWindow = EVERY_TIME,
    ) -> IndexPage:
        return await self.index.page(name, filters, limit, cursor, window)

    async def latest(
        self, name: str, filters: Mapping[str, str], window: TimeWindow = EVERY_TIME
    ) -> IndexEntry:
        cursor: str | None = None
        while True:  # a page may come back empty with a cursor (SCAN_LIMIT): go on
            page = await self.index.page(name, filters, 1, cursor, window)
            if page.entries or page.cursor is None:
                break
            cursor = page.cursor
        if not page.entries:
            wanted = ", ".join(f"{key}={value}" for key, value in filters.items())
            raise ManifestUnknown(f"{name} (no artifact{f' with {wanted}' if wanted else ''})")
        return page.entries[0]

    async def resolve_prefix(self, name: str, prefix: str) -> Digest:
        """The one artifact whose sha256 manifest digest starts with `prefix`."""
        found = await self.index.digests_with_prefix(name, prefix)
        if not found:
            if not await repository_exists(self._registry.driver, name):
                raise NameUnknown(name)
            raise ManifestUnknown(f"{name}@{prefix} (no artifact's digest starts so)")
        if len(found) > 1:
            raise ParameterInvalid(
                f"digest prefix {prefix} of {name} is ambiguous: {found[0]}, {found[1]}, …;"
                " give more digits",
                {"prefix": prefix},
            )
        return found[0]

    async def record(self, name: str, reference: str) -> ArtifactRecord:
        stored, document = await self._registry.artifacts.view(name, reference)
        revision = stored.revision
        artifact = decode_artifact(document)
        if artifact.created is not None:
            created, pushed = int(artifact.created.timestamp()), False
        else:
            entry = await self.index.entry(name, revision.digest)
            meta = await self._registry.blobs.recorded_meta(revision.digest)
            first_seen = entry.created if entry else int(meta.created) if meta else 0
            created, pushed = first_seen, True
        entry = await self.index.entry(name, revision.digest)
        return ArtifactRecord(
            labels=dict(artifact.labels) if entry is None else dict(entry.labels),
            name=name,
            digest=revision.digest,
            media_type=revision.media_type,
            artifact_type=parse_manifest(stored.data, revision.media_type).artifact_type,
            manifest_size=revision.size,
            document_digest=Digest.of(document),
            document_size=len(document),
            tags=await self.index.tags_of(name, revision.digest),
            created=created,
            pushed=pushed,
            artifact=artifact,
        )

    async def label(
        self,
        name: str,
        reference: str,
        labels: Mapping[str, str],
        removed: Sequence[str] = (),
    ) -> LabelResult:
        """Set `labels` and remove `removed` on the artifact `reference` names, without
        changing its digest: a label artifact whose subject it is (arca.formats.labels),
        pushed like any manifest (quotas apply), then folded into the index."""
        check_labels(labels, removed)
        revision = await self._registry.manifests.revision(name, reference)
        if revision.subject is not None:
            known = await self.index.entry(name, revision.digest)
            if known is not None and known.artifact_type == LABELS_ARTIFACT_TYPE:
                raise ManifestInvalid("a label artifact cannot be labelled; label its subject")
        changes = await self.index.label_changes(name, revision.digest)
        moment = datetime.now(UTC)
        newest = max((c.time for c in changes), default="")
        if label_time(moment) <= newest:  # another replica's clock ran ahead: stay after it
            moment = datetime.strptime(newest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            moment += timedelta(microseconds=1)
        subject = {
            "mediaType": revision.media_type,
            "digest": str(revision.digest),
            "size": revision.size,
        }
        data = label_manifest(subject, labels, removed, label_time(moment))
        empty = Digest.of(EMPTY)
        await self._registry.blobs.put_small(EMPTY, empty)
        await self._registry.blobs.link(name, empty)
        result = await self._registry.manifests.put(
            name, str(Digest.of(data)), data, "application/vnd.oci.image.manifest.v1+json"
        )
        entry = await self.index.labels_changed(name, revision.digest)
        if entry is not None:
            now = dict(entry.labels)
        else:  # not indexed (an image index): fold what storage holds
            stored = await self._registry.manifests.get(name, str(revision.digest))
            manifest = parse_manifest(stored.data, stored.revision.media_type)
            pushed = labels_from_annotations(dict(manifest.annotations or {}))
            now = fold(pushed, await self.index.label_changes(name, revision.digest))
        await self._registry.events.publish(
            ArtifactLabelled(
                repository=name,
                digest=revision.digest,
                label_digest=result.digest,
                set=dict(labels),
                removed=tuple(removed),
                labels=now,
            )
        )
        return LabelResult(name, revision.digest, result.digest, now)

    async def verify(self, name: str, reference: str) -> Verification:
        return await self._verifier.verify(name, reference)

    async def delete_by_label(
        self, name: str, filters: Mapping[str, str], window: TimeWindow = EVERY_TIME
    ) -> list[Digest]:
        """Delete every artifact carrying all `filters` (created in `window`); the digests."""
        if not filters:
            raise ParameterInvalid(
                "deleting by label needs at least one label=value filter", {"label": []}
            )
        check_filters(filters)
        doomed = [entry.digest async for entry in self.index.entries(name, filters, window)]
        deleted = []
        for digest in doomed:
            try:
                await self._registry.manifests.delete(name, str(digest))
            except ManifestUnknown:
                await self.index.manifest_deleted(name, digest)  # a stale entry: drop it
                continue
            deleted.append(digest)
        return deleted
