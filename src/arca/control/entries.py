"""One artifact as the index keeps it: what a listing shows, read from the OCI manifest alone.

Everything here comes from the manifest (annotations, layers), so manifests pushed by
oras or skopeo are indexed like arca's own CBOR artifacts, and a rebuild from storage
gives the same entries as the pushes did. `created` is the `org.opencontainers.image.created`
annotation, or else the time the manifest blob was first seen (its `meta`), which every
replica and every rebuild reads the same.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arca.formats.artifact import (
    ANNOTATION_TITLE,
    ANNOTATION_VERSION,
    created_from_annotations,
    labels_from_annotations,
)
from arca.formats.digest import Digest
from arca.formats.manifest import Manifest
from arca.storage import layout

LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A label key, as the artifact format allows it (docs/cbor-artifacts.md)."""

MAX_TAG_HINTS = 32
"""Tags remembered per entry; a record asks the tag store when there are more."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """An artifact in the index. `tags` are hints: readers check them against the tag store."""

    digest: Digest
    created: int
    """Whole seconds since the epoch."""
    labels: Mapping[str, str]
    tags: tuple[str, ...]
    title: str
    version: str
    size: int
    """Bytes of all layers (the artifact's files)."""
    file_count: int
    media_type: str
    artifact_type: str | None = None
    subject: Digest | None = None
    pushed: bool = False
    """True when `created` is the first-seen time, not the artifact's own."""

    @property
    def key(self) -> str:
        return layout.index_key(self.created, self.digest)

    def matches(self, filters: Mapping[str, str]) -> bool:
        return all(self.labels.get(key) == value for key, value in filters.items())

    def with_tags(self, tags: tuple[str, ...]) -> IndexEntry:
        return dataclasses.replace(self, tags=tags)

    def encode(self) -> bytes:
        record: dict[str, Any] = {
            "digest": str(self.digest),
            "created": self.created,
            "labels": dict(self.labels),
            "tags": list(self.tags),
            "title": self.title,
            "version": self.version,
            "size": self.size,
            "file_count": self.file_count,
            "media_type": self.media_type,
            "artifact_type": self.artifact_type,
            "subject": None if self.subject is None else str(self.subject),
            "pushed": self.pushed,
        }
        return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> IndexEntry:
        record = json.loads(data)
        subject = record.get("subject")
        return cls(
            digest=Digest.parse(record["digest"]),
            created=record["created"],
            labels=record["labels"],
            tags=tuple(record["tags"]),
            title=record["title"],
            version=record["version"],
            size=record["size"],
            file_count=record["file_count"],
            media_type=record["media_type"],
            artifact_type=record.get("artifact_type"),
            subject=Digest.parse(subject) if subject else None,
            pushed=record.get("pushed", False),
        )

    @classmethod
    def from_manifest(
        cls, digest: Digest, manifest: Manifest, tags: tuple[str, ...], first_seen: float
    ) -> IndexEntry:
        annotations = dict(manifest.annotations or {})
        created = created_from_annotations(annotations)
        return cls(
            digest=digest,
            created=int(first_seen) if created is None else int(created.timestamp()),
            labels=labels_from_annotations(annotations),
            tags=merge_tags((), tags),
            title=annotations.get(ANNOTATION_TITLE, ""),
            version=annotations.get(ANNOTATION_VERSION, ""),
            size=sum(layer.size for layer in manifest.layers),
            file_count=len(manifest.layers),
            media_type=manifest.media_type,
            artifact_type=manifest.artifact_type,
            subject=None if manifest.subject is None else manifest.subject.digest,
            pushed=created is None,
        )


def merge_tags(known: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """Tags in the order first seen, newest kept when over MAX_TAG_HINTS."""
    merged = list(dict.fromkeys((*known, *new)))
    return tuple(merged[-MAX_TAG_HINTS:])
