"""The JSON bodies of /api/v1, one function per schema of the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arca.control.artifacts import ArtifactRecord
from arca.control.entries import IndexEntry
from arca.control.verify import BlobCheck, Hashes, Verification


def rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(entry: IndexEntry) -> dict[str, Any]:
    return {
        "digest": str(entry.digest),
        "created": rfc3339(entry.created),
        "created_source": "first_seen" if entry.pushed else "artifact",
        "labels": dict(entry.labels),
        "tags": list(entry.tags),
        "title": entry.title,
        "version": entry.version,
        "size": entry.size,
        "file_count": entry.file_count,
        "media_type": entry.media_type,
        "artifact_type": entry.artifact_type,
        "subject": None if entry.subject is None else str(entry.subject),
    }


def record(found: ArtifactRecord) -> dict[str, Any]:
    artifact = found.artifact
    subject = artifact.subject
    return {
        "name": found.name,
        "digest": str(found.digest),
        "media_type": found.media_type,
        "artifact_type": found.artifact_type,
        "manifest_size": found.manifest_size,
        "document": {"digest": str(found.document_digest), "size": found.document_size},
        "tags": found.tags,
        "created": rfc3339(found.created),
        "created_source": "first_seen" if found.pushed else "artifact",
        "labels": dict(found.labels),
        "pushed_labels": dict(artifact.labels),
        "title": artifact.name,
        "version": artifact.version,
        "size": found.size,
        "files": [
            {
                "path": file.path,
                "media_type": file.media_type,
                "size": file.size,
                "sha256": str(file.sha256),
                "blake3": str(file.blake3),
            }
            for file in artifact.files
        ],
        "metadata": artifact.metadata,
        "subject": None
        if subject is None
        else {
            "media_type": subject.media_type,
            "digest": str(subject.digest),
            "size": subject.size,
        },
    }


def verification(result: Verification) -> dict[str, Any]:
    return {
        "name": result.name,
        "digest": str(result.digest),
        "ok": result.ok,
        "problems": result.problems,
        "checks": [_check(check) for check in result.checks],
    }


def _check(check: BlobCheck) -> dict[str, Any]:
    return {
        "kind": check.kind,
        "path": check.path,
        "media_type": check.media_type,
        "digest": str(check.digest),
        "ok": check.ok,
        "problems": check.problems,
        "expected": _hashes(check.expected),
        "actual": None if check.actual is None else _hashes(check.actual),
    }


def _hashes(hashes: Hashes) -> dict[str, Any]:
    return {
        "size": hashes.size,
        "sha256": None if hashes.sha256 is None else str(hashes.sha256),
        "blake3": None if hashes.blake3 is None else str(hashes.blake3),
    }
