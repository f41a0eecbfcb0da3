"""What the client returns: frozen dataclasses read from /api/v1 JSON (docs/openapi.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from arca.formats.artifact import Artifact


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class ArtifactSummary:
    """An artifact as listings show it."""

    digest: str
    created: datetime
    created_source: str
    labels: Mapping[str, str]
    tags: tuple[str, ...]
    title: str
    version: str
    size: int
    file_count: int
    media_type: str
    artifact_type: str | None
    subject: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The JSON as the server sent it (what `--json` prints)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactSummary:
        return cls(
            digest=data["digest"],
            created=_time(data["created"]),
            created_source=data["created_source"],
            labels=dict(data["labels"]),
            tags=tuple(data["tags"]),
            title=data["title"],
            version=data["version"],
            size=data["size"],
            file_count=data["file_count"],
            media_type=data["media_type"],
            artifact_type=data.get("artifact_type"),
            subject=data.get("subject"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class ArtifactPage:
    artifacts: list[ArtifactSummary]
    cursor: str | None
    """Pass back as `cursor` for the next page; None on the last."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    media_type: str
    size: int
    sha256: str
    blake3: str


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One artifact in full (GET /api/v1/repositories/<name>/artifacts/<reference>)."""

    name: str
    digest: str
    media_type: str
    artifact_type: str | None
    tags: tuple[str, ...]
    created: datetime
    created_source: str
    labels: Mapping[str, str]
    title: str
    version: str
    size: int
    files: tuple[FileRecord, ...]
    metadata: Any
    document_digest: str
    manifest_size: int
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The JSON as the server sent it (what `--json` prints)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactRecord:
        return cls(
            name=data["name"],
            digest=data["digest"],
            media_type=data["media_type"],
            artifact_type=data.get("artifact_type"),
            tags=tuple(data["tags"]),
            created=_time(data["created"]),
            created_source=data["created_source"],
            labels=dict(data["labels"]),
            title=data["title"],
            version=data["version"],
            size=data["size"],
            files=tuple(FileRecord(**file) for file in data["files"]),
            metadata=data.get("metadata"),
            document_digest=data["document"]["digest"],
            manifest_size=data["manifest_size"],
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class BlobCheck:
    kind: str
    path: str | None
    digest: str
    ok: bool
    problems: tuple[str, ...]
    expected: Mapping[str, Any]
    actual: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Verification:
    name: str
    digest: str
    ok: bool
    problems: tuple[str, ...]
    checks: tuple[BlobCheck, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The JSON as the server sent it (what `--json` prints)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verification:
        return cls(
            name=data["name"],
            digest=data["digest"],
            ok=data["ok"],
            problems=tuple(data["problems"]),
            checks=tuple(
                BlobCheck(
                    kind=check["kind"],
                    path=check.get("path"),
                    digest=check["digest"],
                    ok=check["ok"],
                    problems=tuple(check["problems"]),
                    expected=check["expected"],
                    actual=check.get("actual"),
                )
                for check in data["checks"]
            ),
            raw=data,
        )

    @property
    def failures(self) -> list[str]:
        """One line per problem, naming the blob: what a person reads first."""
        lines = list(self.problems)
        for check in self.checks:
            where = check.path or check.kind
            lines.extend(f"{where}: {problem}" for problem in check.problems)
        return lines


@dataclass(frozen=True, slots=True)
class LabelResult:
    """What `label` changed: the artifact (same digest), the label artifact, the labels now."""

    name: str
    digest: str
    label_digest: str
    labels: Mapping[str, str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelResult:
        return cls(data["name"], data["digest"], data["label_digest"], dict(data["labels"]))


@dataclass(frozen=True, slots=True)
class PushResult:
    name: str
    digest: str
    """The OCI manifest digest: the artifact's id."""
    tags: tuple[str, ...]
    artifact: Artifact
    uploaded: int
    """Blobs sent; the others were already in the registry."""
    skipped: int


@dataclass(frozen=True, slots=True)
class PullResult:
    name: str
    digest: str
    artifact: Artifact
    paths: tuple[Path, ...]
    """Where each file was written (pull to a directory), in the artifact's file order."""


@dataclass(frozen=True, slots=True)
class Referrer:
    """An artifact that names another as its `subject` (the OCI referrers API)."""

    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: Mapping[str, str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Referrer:
        return cls(
            digest=data["digest"],
            media_type=data.get("mediaType", ""),
            artifact_type=data.get("artifactType"),
            size=data.get("size", 0),
            annotations=dict(data.get("annotations") or {}),
        )
