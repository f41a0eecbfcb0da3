"""arca artifacts: the canonical CBOR document, its validation, and its OCI mapping.

An artifact is a CBOR map (format 1, see docs/cbor-artifacts.md) encoded with the
deterministic rules of `arca.formats.cbor`, so one artifact has one digest. The
document is checked in three steps, each naming what is wrong: the canonical codec,
the JSON Schema of the decoded form (shipped as `schemas/artifact-v1.schema.json`),
and the rules a schema cannot say (files sorted by path, paths unique).

Every OCI tool sees an arca artifact as an ordinary image manifest: the document is
the config blob, each file a layer, and labels, name, version and creation time are
annotations. `to_oci_manifest` writes that manifest deterministically, so the same
document gives the same manifest digest on every replica. `from_oci_manifest` goes
the other way for manifests pushed by other tools; it cannot recover free metadata
(which is not in annotations), so for arca artifacts the registry serves the stored
config blob instead (`is_arca_manifest`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from itertools import pairwise
from typing import Any, cast

from jsonschema import validators
from jsonschema.exceptions import ValidationError, best_match

from arca.errors import DigestInvalid, ManifestInvalid
from arca.formats import cbor
from arca.formats.cbor import Value
from arca.formats.digest import Digest

ARTIFACT_MEDIA_TYPE = "application/vnd.arca.artifact.v1+cbor"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
FORMAT_VERSION = 1

ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_VERSION = "org.opencontainers.image.version"
LABEL_ANNOTATION_PREFIX = "dev.arca.label."
MAX_LABELS = 64
"""The schema's `maxProperties` for labels; a derived view keeps the first this many."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file of an artifact: an OCI layer that also carries its blake3 digest."""

    path: str
    media_type: str
    size: int
    sha256: Digest
    blake3: Digest
    executable: bool = False
    """Pulled with its execute bits set (the one mode bit kept, as git keeps it)."""


@dataclass(frozen=True, slots=True)
class ArtifactLink:
    """A symbolic link: `target` is relative to the link's directory and stays inside."""

    path: str
    target: str


@dataclass(frozen=True, slots=True)
class Subject:
    """The OCI descriptor of the artifact this one refers to (the referrers API)."""

    media_type: str
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """A decoded artifact. `created` is a timezone-aware datetime in whole seconds.

    Files, directories and links are kept sorted by path and labels by key: each is a
    set, and holding them in their one canonical order makes equal artifacts compare
    equal. `directories` are the ones to create even when empty; `links` are symlinks.
    """

    name: str
    version: str
    files: tuple[ArtifactFile, ...]
    created: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    metadata: Value = None
    subject: Subject | None = None
    directories: tuple[str, ...] = ()
    links: tuple[ArtifactLink, ...] = ()
    artifact_type: str | None = None
    """The OCI manifest's `artifactType`; None means ARTIFACT_MEDIA_TYPE."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(sorted(self.files, key=lambda f: f.path)))
        object.__setattr__(self, "labels", dict(sorted(self.labels.items())))
        object.__setattr__(self, "directories", tuple(sorted(self.directories)))
        object.__setattr__(self, "links", tuple(sorted(self.links, key=lambda link: link.path)))


# ------------------------------------------------------------------ CBOR document


def decode_artifact(data: bytes) -> Artifact:
    """Strictly decode a document; ManifestInvalid names the first problem found."""
    document = cbor.decode(data)
    _validate(document)
    return _from_document(cast(dict[str, Any], document))


def encode_artifact(artifact: Artifact) -> bytes:
    """The canonical document for `artifact`; ManifestInvalid if it breaks a rule."""
    document = _to_document(artifact)
    _validate(document)
    return cbor.encode(document)


def _to_document(artifact: Artifact) -> dict[str, Value]:
    document: dict[str, Value] = {
        "format": FORMAT_VERSION,
        "name": artifact.name,
        "version": artifact.version,
        "labels": dict(artifact.labels),
        "metadata": artifact.metadata,
        "files": [_file_document(file) for file in artifact.files],
    }
    if artifact.created is not None:
        document["created"] = _seconds(artifact.created)
    if artifact.subject is not None:
        document["subject"] = {
            "mediaType": artifact.subject.media_type,
            "digest": str(artifact.subject.digest),
            "size": artifact.subject.size,
        }
    if artifact.artifact_type is not None:
        document["artifactType"] = artifact.artifact_type
    if artifact.directories:
        document["directories"] = list(artifact.directories)
    if artifact.links:
        document["links"] = [{"path": link.path, "target": link.target} for link in artifact.links]
    return document


def _file_document(file: ArtifactFile) -> dict[str, Value]:
    document: dict[str, Value] = {
        "path": file.path,
        "mediaType": file.media_type,
        "size": file.size,
        "sha256": str(file.sha256),
        "blake3": str(file.blake3),
    }
    if file.executable:
        document["executable"] = True
    return document


def _seconds(created: datetime) -> int:
    """Whole seconds since the epoch; refused rather than rounded, so decode gives it back."""
    if created.utcoffset() is None:
        raise ManifestInvalid("artifact invalid: created must be timezone-aware")
    delta = created - _EPOCH
    if delta % _SECOND:
        raise ManifestInvalid("artifact invalid: created must be a whole number of seconds")
    return delta // _SECOND


def _from_document(document: dict[str, Any]) -> Artifact:
    """Build the artifact from a document that has passed `_validate`."""
    created = document.get("created")
    subject = document.get("subject")
    return Artifact(
        name=document["name"],
        version=document["version"],
        created=None if created is None else _EPOCH + created * _SECOND,
        labels=document["labels"],
        metadata=document["metadata"],
        subject=None
        if subject is None
        else Subject(subject["mediaType"], Digest.parse(subject["digest"]), subject["size"]),
        files=tuple(
            ArtifactFile(
                path=file["path"],
                media_type=file["mediaType"],
                size=file["size"],
                sha256=Digest.parse(file["sha256"]),
                blake3=Digest.parse(file["blake3"]),
                executable=file.get("executable", False),
            )
            for file in document["files"]
        ),
        artifact_type=document.get("artifactType"),
        directories=tuple(document.get("directories", ())),
        links=tuple(
            ArtifactLink(link["path"], link["target"]) for link in document.get("links", ())
        ),
    )


# ------------------------------------------------------------------ validation


def artifact_schema() -> dict[str, Any]:
    """The JSON Schema of the decoded form, as shipped in the package (a copy)."""
    return copy.deepcopy(_schema())


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("arca.formats").joinpath("schemas/artifact-v1.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator() -> Any:
    """A Draft 2020-12 validator with CBOR's types and ECMA-262's `$`.

    JSON cannot tell 1 from 1.0, CBOR can: an integer here is an int, never a float.
    Python's `$` also matches before a final newline; ECMA-262's does not.
    """
    base = validators.Draft202012Validator
    type_checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    cls = validators.extend(base, validators={"pattern": _pattern}, type_checker=type_checker)
    return cls(_schema())


def _pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _ecma_regex(pattern).search(instance):
        what = schema.get("title", "value")
        rule = schema.get("$comment")
        shown = instance if len(instance) <= 80 else instance[:77] + "..."
        yield ValidationError(f"{shown!r} is not a valid {what}" + (f" ({rule})" if rule else ""))


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA-262 pattern, turning each `$` outside a class into `\\Z`."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


def _validate(document: Value) -> None:
    error = best_match(_validator().iter_errors(document))
    if error is not None:
        where = _pointer(error.absolute_path)
        raise ManifestInvalid(
            f"artifact invalid: {where}: {error.message}",
            {"path": where, "rule": error.validator},
        )
    decoded = cast(dict[str, Any], document)
    if decoded.get("artifactType") == ARTIFACT_MEDIA_TYPE:
        raise _semantic(
            "/artifactType", "default-absent", "artifactType is the default: leave it out"
        )
    files = decoded["files"]
    directories = decoded.get("directories", [])
    links = decoded.get("links", [])
    _check_paths("files", [file["path"] for file in files], "/path")
    _check_paths("directories", directories, "")
    _check_paths("links", [link["path"] for link in links], "/path")
    _check_kinds(files, directories, links)
    _check_links(links, [*(f["path"] for f in files), *directories, *(x["path"] for x in links)])
    _check_blobs(files)


def _check_paths(kind: str, paths: list[str], suffix: str) -> None:
    """Sorted and unique, which JSON Schema cannot say; str order is UTF-8 byte order."""
    for index, (before, after) in enumerate(pairwise(paths), 1):
        if after == before:
            raise _semantic(f"/{kind}/{index}{suffix}", "unique-paths", f"duplicate path {after!r}")
        if after < before:
            raise _semantic(
                f"/{kind}/{index}{suffix}",
                "sorted-paths",
                f"{kind} not sorted by path ({after!r} after {before!r})",
            )


def _check_kinds(
    files: list[dict[str, Any]], directories: list[str], links: list[dict[str, Any]]
) -> None:
    """A path is a file, a directory or a link, never two of them."""
    seen = {file["path"]: "file" for file in files}
    for kind, paths in (("directories", directories), ("links", [x["path"] for x in links])):
        for index, path in enumerate(paths):
            other = seen.setdefault(path, kind)
            if other != kind:
                raise _semantic(
                    f"/{kind}/{index}", "unique-paths", f"path {path!r} is also a {other}"
                )


def _check_links(links: list[dict[str, Any]], paths: Iterable[str]) -> None:
    """A target climbs (`..`) no higher than the artifact's top, and nothing lies below a
    link, so every link's directory is a real one and every target stays inside."""
    linked = {link["path"] for link in links}
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in linked:
                raise _semantic(
                    "/links",
                    "below-link",
                    f"{path!r} lies below the link {'/'.join(parts[:depth])!r}",
                )
    for index, link in enumerate(links):
        depth = link["path"].count("/")
        parts = link["target"].split("/")
        climbs = len(parts) - len([part for part in parts if part != ".."])
        if climbs > depth:
            raise _semantic(
                f"/links/{index}/target",
                "link-inside",
                f"link {link['path']!r} points outside the artifact ({link['target']!r})",
            )


def _check_blobs(files: list[dict[str, Any]]) -> None:
    """Files with one sha256 are one blob, so their size and blake3 must agree."""
    seen: dict[str, tuple[int, str]] = {}
    for index, file in enumerate(files):
        facts = seen.setdefault(file["sha256"], (file["size"], file["blake3"]))
        if facts != (file["size"], file["blake3"]):
            raise _semantic(
                f"/files/{index}",
                "same-blob",
                f"{file['sha256']} appears with another size or blake3 digest",
            )


def _semantic(where: str, rule: str, problem: str) -> ManifestInvalid:
    return ManifestInvalid(f"artifact invalid: {where}: {problem}", {"path": where, "rule": rule})


def _pointer(path: Iterable[object]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "/" + "/".join(parts) if parts else "(document)"


def _fits(value: object, pointer: str) -> bool:
    """Whether `value` passes the schema at `pointer` (a `/`-separated path, no escapes)."""
    schema: Any = _schema()
    for part in pointer.strip("/").split("/"):
        schema = schema[part]
    return bool(_validator().evolve(schema=schema).is_valid(value))


# ------------------------------------------------------------------ OCI mapping


def is_arca_manifest(manifest: Mapping[str, Any]) -> bool:
    """Whether the manifest's config blob is an arca document (serve it, don't derive)."""
    config = manifest.get("config")
    return isinstance(config, Mapping) and config.get("mediaType") == ARTIFACT_MEDIA_TYPE


def to_oci_manifest(artifact: Artifact, document: bytes) -> bytes:
    """The OCI image manifest for `artifact`, whose canonical document is `document`.

    Deterministic: fixed key order, compact separators, UTF-8 without `\\u` escapes
    (the format allows no control characters in anything that reaches the manifest).
    """
    if encode_artifact(artifact) != document:
        raise ValueError("document is not the canonical encoding of artifact")
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "artifactType": artifact.artifact_type or ARTIFACT_MEDIA_TYPE,
        "config": {
            "mediaType": ARTIFACT_MEDIA_TYPE,
            "digest": str(Digest.of(document, "sha256")),
            "size": len(document),
        },
        "layers": [_layer(file) for file in artifact.files],
    }
    if artifact.subject is not None:
        manifest["subject"] = {
            "mediaType": artifact.subject.media_type,
            "digest": str(artifact.subject.digest),
            "size": artifact.subject.size,
        }
    manifest["annotations"] = _annotations(artifact)
    return json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _layer(file: ArtifactFile) -> dict[str, Any]:
    return {
        "mediaType": file.media_type,
        "digest": str(file.sha256),
        "size": file.size,
        "annotations": {ANNOTATION_TITLE: file.path},
    }


def _annotations(artifact: Artifact) -> dict[str, str]:
    annotations = {LABEL_ANNOTATION_PREFIX + key: value for key, value in artifact.labels.items()}
    if artifact.created is not None:
        annotations[ANNOTATION_CREATED] = _rfc3339(_seconds(artifact.created))
    annotations[ANNOTATION_TITLE] = artifact.name
    annotations[ANNOTATION_VERSION] = artifact.version
    return dict(sorted(annotations.items()))


def _rfc3339(seconds: int) -> str:
    t = _EPOCH + seconds * _SECOND
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def check_oci_manifest(manifest: bytes, document: bytes) -> Artifact:
    """Decode `document` and check that `manifest` is exactly the one arca generates for it.

    For an OCI manifest pushed with an arca config blob (a mirror copying an arca
    artifact): only when this holds may the registry serve the config blob as its view.
    """
    artifact = decode_artifact(document)
    if to_oci_manifest(artifact, document) != manifest:
        raise ManifestInvalid(
            "manifest is not the one generated for its arca document",
            {"rule": "generated-manifest"},
        )
    return artifact


def from_oci_manifest(
    manifest: Mapping[str, Any],
    blake3_of: Mapping[str, str],
    name: str,
    reference: str | None,
) -> Artifact:
    """The derived artifact view of an OCI image manifest pushed by another tool.

    `blake3_of` maps each layer's sha256 digest string to its blake3 digest string.
    Descriptive annotations the format cannot hold are left out (an unparsable
    `created`, an invalid label); a layer it cannot hold (not sha256, no blake3
    known, invalid media type) fails with ManifestInvalid. Metadata is always null:
    for arca artifacts serve the stored config blob instead (`is_arca_manifest`).
    """
    annotations = _string_map(manifest.get("annotations"))
    artifact = Artifact(
        name=_name_from(annotations, name),
        version=_version_from(annotations, reference),
        created=_created_from(annotations),
        labels=_labels_from(annotations),
        subject=_subject_from(manifest.get("subject")),
        files=_files_from(manifest.get("layers"), blake3_of),
    )
    _validate(_to_document(artifact))
    return artifact


def labels_from_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """The labels a derived view carries, for indexes that must agree with the view."""
    return _labels_from(annotations)


def created_from_annotations(annotations: Mapping[str, str]) -> datetime | None:
    """The creation time a derived view carries (None if absent or unusable)."""
    return _created_from(annotations)


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _name_from(annotations: Mapping[str, str], name: str) -> str:
    title = annotations.get(ANNOTATION_TITLE)
    return title if title is not None and _fits(title, "/properties/name") else name


def _version_from(annotations: Mapping[str, str], reference: str | None) -> str:
    """The version annotation, else the tag pulled; a digest reference is no version."""
    version = annotations.get(ANNOTATION_VERSION)
    if version is not None and _fits(version, "/properties/version"):
        return version
    if reference is not None and ":" not in reference and _fits(reference, "/properties/version"):
        return reference
    return ""


def _created_from(annotations: Mapping[str, str]) -> datetime | None:
    """RFC 3339 to whole UTC seconds (fraction dropped); None if absent or unusable."""
    match = _RFC3339.fullmatch(annotations.get(ANNOTATION_CREATED, ""))
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    sign, offset_hours, offset_minutes = match.groups()[6:]
    offset = timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
    try:
        tz = timezone(-offset if sign == "-" else offset)
        created = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:  # day 31 of a 30-day month, a leap second, an offset of 24h
        return None
    return created if _fits((created - _EPOCH) // _SECOND, "/properties/created") else None


def _labels_from(annotations: Mapping[str, str]) -> dict[str, str]:
    """Valid `dev.arca.label.*` annotations, the first MAX_LABELS in key order."""
    labels: dict[str, str] = {}
    for key, value in sorted(annotations.items()):
        label = key.removeprefix(LABEL_ANNOTATION_PREFIX)
        if label == key or len(labels) == MAX_LABELS:
            continue
        if _fits({label: value}, "/properties/labels"):
            labels[label] = value
    return labels


def _subject_from(subject: object) -> Subject | None:
    if subject is None:
        return None
    if not isinstance(subject, Mapping) or not _fits(dict(subject), "/$defs/descriptor"):
        raise ManifestInvalid(
            "manifest subject is not a descriptor arca can hold", {"rule": "subject"}
        )
    return Subject(subject["mediaType"], Digest.parse(subject["digest"]), subject["size"])


def _files_from(layers: object, blake3_of: Mapping[str, str]) -> tuple[ArtifactFile, ...]:
    if not isinstance(layers, list):
        raise ManifestInvalid("manifest has no layers array", {"rule": "layers"})
    files: dict[str, ArtifactFile] = {}
    for index, layer in enumerate(layers):
        file = _file_from(index, layer, blake3_of)
        path = _path_for(file, files)
        if path is None:
            raise ManifestInvalid(
                f"layer {index}: no usable path: its title and its digest are taken or invalid",
                {"rule": "unique-paths", "layer": index},
            )
        files[path] = dataclasses.replace(file, path=path)
    return tuple(files.values())


def _path_for(file: ArtifactFile, taken: Mapping[str, object]) -> str | None:
    """The layer's title if it is a valid, unused path, else its digest, else None."""
    for path in (file.path, str(file.sha256)):
        if path and path not in taken and _fits(path, "/$defs/file/properties/path"):
            return path
    return None


def _file_from(index: int, layer: object, blake3_of: Mapping[str, str]) -> ArtifactFile:
    """The layer as a file whose path is its title (maybe empty); raises naming the layer."""

    def invalid(problem: str) -> ManifestInvalid:
        return ManifestInvalid(f"layer {index}: {problem}", {"rule": "layer", "layer": index})

    if not isinstance(layer, Mapping):
        raise invalid("not a descriptor")
    media_type, digest, size = layer.get("mediaType"), layer.get("digest"), layer.get("size")
    if not _fits(media_type, "/$defs/mediaType"):
        raise invalid(f"media type {media_type!r} is not valid")
    if not _fits(size, "/$defs/size"):
        raise invalid(f"size {size!r} is not valid")
    if not isinstance(digest, str):
        raise invalid("digest is not a string")
    sha256 = _parse_digest(digest)
    if sha256.algorithm != "sha256":
        raise invalid(f"digest {digest} is not sha256; arca files carry sha256 and blake3")
    blake3 = blake3_of.get(digest)
    if blake3 is None:
        raise invalid(f"no blake3 digest known for {digest}")
    title = _string_map(layer.get("annotations")).get(ANNOTATION_TITLE, "")
    media_type, size = cast(str, media_type), cast(int, size)
    return ArtifactFile(title, media_type, size, sha256, _parse_digest(blake3))


def _parse_digest(value: str) -> Digest:
    try:
        return Digest.parse(value)
    except DigestInvalid as error:
        raise ManifestInvalid(error.message, error.detail) from None
