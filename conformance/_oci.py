"""Content the suite pushes: digests, descriptors, manifests and OCI image layouts.

Pure functions on bytes (plus one writer of OCI layout directories for skopeo).
Every blob is random, so two runs never share a digest and no client cache or
registry dedupe can make a broken push look like a working one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
ACCEPT_ALL_MANIFESTS = ", ".join(MANIFEST_TYPES)

EMPTY_JSON = b"{}"

# The error codes of the spec's table, plus the two legacy codes it says a
# client MAY meet.
ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
        "TAG_INVALID",
        "MANIFEST_UNVERIFIED",
    }
)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def matches_digest(data: bytes, digest: str) -> bool:
    """True when `data` hashes to `digest` under the digest's own algorithm."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm not in ("sha256", "sha512") or not encoded:
        return False
    return hashlib.new(algorithm, data).hexdigest() == encoded.lower()


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str = "application/octet-stream"
    algorithm: str = "sha256"

    @property
    def digest(self) -> str:
        return digest_of(self.data, self.algorithm)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Manifest:
    """A manifest as bytes, with the blobs and child manifests it needs."""

    body: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Manifest, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest_of(self.body)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def config_blob(media_type: str = OCI_CONFIG, architecture: str = "amd64") -> Blob:
    # A valid image config (skopeo reads it), made unique by a random label.
    document = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": {"conformance.nonce": os.urandom(8).hex()}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return Blob(canonical_json(document), media_type)


def tar_layer(size: int = 1024) -> tuple[Blob, str]:
    """A real gzipped tar with one random file; returns the blob and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        payload = os.urandom(size)
        info = tarfile.TarInfo("conformance.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    return Blob(gzip.compress(tar_bytes, mtime=0), OCI_LAYER), digest_of(tar_bytes)


def image_manifest(
    *,
    layers: int = 2,
    layer_size: int = 1024,
    docker: bool = False,
    architecture: str = "amd64",
    artifact_type: str | None = None,
    config: Blob | None = None,
    layer_blobs: tuple[Blob, ...] | None = None,
    subject: Manifest | dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """An OCI image manifest (or Docker schema2 with docker=True) over fresh blobs."""
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    if layer_blobs is None:
        built = [tar_layer(layer_size) for _ in range(layers)]
        layer_blobs = tuple(Blob(blob.data, layer_type) for blob, _ in built)
        diff_ids = [diff_id for _, diff_id in built]
    else:
        diff_ids = []
    if config is None:
        document = json.loads(config_blob(architecture=architecture).data)
        document["rootfs"]["diff_ids"] = diff_ids
        config = Blob(canonical_json(document), DOCKER_CONFIG if docker else OCI_CONFIG)
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        manifest["artifactType"] = artifact_type
    manifest["config"] = config.descriptor()
    manifest["layers"] = [blob.descriptor() for blob in layer_blobs]
    if subject is not None:
        manifest["subject"] = subject.descriptor() if isinstance(subject, Manifest) else subject
    if annotations:
        manifest["annotations"] = annotations
    manifest.update(extra or {})
    blobs = (config, *layer_blobs)
    unique = tuple({blob.digest: blob for blob in blobs}.values())
    return Manifest(canonical_json(manifest), media_type, unique, (), dict(annotations or {}))


def artifact_manifest(
    *,
    artifact_type: str | None,
    subject: Manifest | dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    config_media_type: str = OCI_EMPTY,
    payload: bytes | None = None,
) -> Manifest:
    """An OCI 1.1 artifact: empty (or typed) config, one payload layer."""
    config = Blob(EMPTY_JSON, config_media_type)
    layer = Blob(payload if payload is not None else os.urandom(64), "application/octet-stream")
    return image_manifest(
        artifact_type=artifact_type,
        config=config,
        layer_blobs=(layer,),
        subject=subject,
        annotations=annotations,
    )


def image_index(
    children: tuple[Manifest, ...],
    *,
    docker: bool = False,
    artifact_type: str | None = None,
    subject: Manifest | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    media_type = DOCKER_LIST if docker else OCI_INDEX
    entries = []
    for child in children:
        architecture = json.loads(_config_of(child).data).get("architecture", "amd64")
        entries.append(child.descriptor(platform={"architecture": architecture, "os": "linux"}))
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["manifests"] = entries
    if subject is not None:
        document["subject"] = subject.descriptor()
    if annotations:
        document["annotations"] = annotations
    return Manifest(canonical_json(document), media_type, (), children, dict(annotations or {}))


def _config_of(manifest: Manifest) -> Blob:
    config_digest = manifest.document["config"]["digest"]
    return next(blob for blob in manifest.blobs if blob.digest == config_digest)


def padded_manifest(size: int) -> Manifest:
    """An OCI image manifest of exactly `size` bytes (an annotation pads it)."""
    base = image_manifest(layers=1, layer_size=64)
    document = base.document
    document["annotations"] = {"org.example.padding": ""}
    overhead = len(canonical_json(document))
    if size < overhead:
        raise ValueError(f"a manifest cannot be smaller than {overhead} bytes")
    document["annotations"]["org.example.padding"] = "x" * (size - overhead)
    body = canonical_json(document)
    assert len(body) == size
    return Manifest(body, OCI_MANIFEST, base.blobs)


def write_oci_layout(root: Path, manifests: dict[str, Manifest]) -> None:
    """Write an OCI image layout holding `manifests` under their tags (ref.name)."""
    blobs_dir = root / "blobs"
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def store(data: bytes, digest: str) -> None:
        algorithm, _, encoded = digest.partition(":")
        path = blobs_dir / algorithm / encoded
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def store_manifest(manifest: Manifest) -> None:
        for blob in manifest.blobs:
            store(blob.data, blob.digest)
        for child in manifest.children:
            store_manifest(child)
        store(manifest.body, manifest.digest)

    entries = []
    for tag, manifest in manifests.items():
        store_manifest(manifest)
        entries.append(manifest.descriptor(annotations={"org.opencontainers.image.ref.name": tag}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (root / "index.json").write_bytes(canonical_json(index))


def read_oci_layout_blob(root: Path, digest: str) -> bytes:
    algorithm, _, encoded = digest.partition(":")
    return (root / "blobs" / algorithm / encoded).read_bytes()


def read_oci_layout_tag(root: Path, tag: str) -> dict[str, Any]:
    index = json.loads((root / "index.json").read_text())
    for entry in index["manifests"]:
        if (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag:
            return dict(entry)
    raise KeyError(f"tag {tag!r} not in the layout at {root}")
