"""Label artifacts: labels added to an artifact after its push, without changing its digest.

A label artifact is an ordinary OCI artifact manifest (any OCI client can push, list
or copy one) whose `subject` is the labelled artifact:

- `artifactType` `application/vnd.arca.labels.v1+json`; the config and the one layer
  are the empty descriptor (`{}`), as the image spec advises for artifacts without
  content;
- annotations `dev.arca.label.<key>` = value for each label set (as on every arca
  artifact), `dev.arca.labels.remove` = the keys removed, comma-separated (keys cannot
  hold a comma), and `dev.arca.labels.time` = when, RFC 3339 UTC with microseconds
  (`org.opencontainers.image.created` too, for other tools).

The labels of an artifact are its pushed labels with every label artifact applied
oldest first (by `dev.arca.labels.time`, then digest): so for each key, the newest
label artifact that sets or removes it wins, and a key no label artifact names keeps
its pushed value (docs/artifacts.md, "Labels after the push"). Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from arca.errors import DigestInvalid, ManifestInvalid
from arca.formats.artifact import (
    ANNOTATION_CREATED,
    LABEL_ANNOTATION_PREFIX,
    MAX_LABELS,
    labels_from_annotations,
)
from arca.formats.digest import Digest

LABELS_ARTIFACT_TYPE = "application/vnd.arca.labels.v1+json"
REMOVE_ANNOTATION = "dev.arca.labels.remove"
TIME_ANNOTATION = "dev.arca.labels.time"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VALUE = re.compile(r"[^\x00-\x1f\x7f]{0,1024}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@dataclass(frozen=True, slots=True)
class LabelChange:
    """What one label artifact does: its time, the labels it sets and the keys it removes."""

    time: str
    """RFC 3339 UTC with microseconds: sorts as time does."""
    digest: Digest
    set: Mapping[str, str]
    removed: tuple[str, ...]

    @property
    def order(self) -> tuple[str, str]:
        return self.time, str(self.digest)


def check_labels(labels: Mapping[str, str], removed: Sequence[str]) -> None:
    """Refuse keys and values an artifact could not carry (docs/cbor-artifacts.md)."""
    if not labels and not removed:
        raise ManifestInvalid("no labels to set or remove")
    if len(labels) + len(removed) > MAX_LABELS:
        raise ManifestInvalid(f"at most {MAX_LABELS} labels change at once")
    for key in (*labels, *removed):
        if not _KEY.fullmatch(key):
            raise ManifestInvalid(
                f"invalid label key {key[:130]!r}: a letter or digit, then letters, digits,"
                " '.', '_' or '-', at most 128 characters",
                {"label": key[:130]},
            )
    for key, value in labels.items():
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ManifestInvalid(
                f"invalid value of label {key!r}: at most 1024 characters, no control characters",
                {"label": key},
            )
    both = set(labels) & set(removed)
    if both:
        raise ManifestInvalid(f"label {sorted(both)[0]!r} is both set and removed")


def label_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def label_manifest(
    subject: Mapping[str, object],
    labels: Mapping[str, str],
    removed: Sequence[str],
    time: str,
) -> bytes:
    """The OCI manifest of a label artifact for `subject` (a descriptor: mediaType,
    digest, size), deterministic for the same arguments."""
    check_labels(labels, removed)
    annotations = {f"{LABEL_ANNOTATION_PREFIX}{key}": value for key, value in labels.items()}
    if removed:
        annotations[REMOVE_ANNOTATION] = ",".join(sorted(set(removed)))
    annotations[TIME_ANNOTATION] = time
    annotations[ANNOTATION_CREATED] = time[:19] + "Z"
    empty = {"mediaType": EMPTY_MEDIA_TYPE, "digest": str(Digest.of(EMPTY)), "size": len(EMPTY)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": LABELS_ARTIFACT_TYPE,
        "config": empty,
        "layers": [empty],
        "subject": dict(subject),
        "annotations": annotations,
    }
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()


def change_from_descriptor(descriptor: Mapping[str, object]) -> LabelChange | None:
    """The change a referrer descriptor (with its annotations) records, or None if it is
    not a label artifact or its time is unusable."""
    if descriptor.get("artifactType") != LABELS_ARTIFACT_TYPE:
        return None
    raw = descriptor.get("annotations")
    annotations = (
        {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(raw, Mapping)
        else {}
    )
    time = annotations.get(TIME_ANNOTATION, "")
    if not _TIME.fullmatch(time):
        return None
    removed = tuple(
        key for key in annotations.get(REMOVE_ANNOTATION, "").split(",") if _KEY.fullmatch(key)
    )
    try:
        digest = Digest.parse(str(descriptor.get("digest")))
    except DigestInvalid:  # a descriptor arca did not write
        return None
    return LabelChange(time, digest, labels_from_annotations(annotations), removed)


def fold(pushed: Mapping[str, str], changes: Iterable[LabelChange]) -> dict[str, str]:
    """The labels after applying `changes`, oldest first, to the `pushed` labels (the
    result keeps at most MAX_LABELS, first by key)."""
    labels = dict(pushed)
    for change in sorted(changes, key=lambda c: c.order):
        for key in change.removed:
            labels.pop(key, None)
        labels.update(change.set)
    return dict(sorted(labels.items())[:MAX_LABELS])
