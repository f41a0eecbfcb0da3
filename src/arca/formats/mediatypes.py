"""Media types arca knows: OCI image-spec v1.1 and Docker image manifest v2 schema 2.

Only the four manifest types in `MANIFEST_MEDIA_TYPES` are accepted on a manifest
PUT. Every other type here is informative: descriptors may carry any media type
that is well formed (RFC 6838), since the image-spec asks implementations to ignore
types they do not know.
"""

from __future__ import annotations

import re

# OCI image-spec
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
# Proposed during the v1.1 release candidates and dropped before v1.1.0; named here
# only so that a push of one gets a precise refusal.
OCI_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"

# The empty JSON object `{}`: the config (or single layer) of artifacts that need none.
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_JSON_SIZE = 2
EMPTY_JSON_DATA = "e30="  # base64 of b"{}"

# Docker image manifest v2, schema 2
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"

# Docker schema 1: signed, per-layer v1 JSON; refused (see docs/manifests.md).
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1_MEDIA_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST})

IMAGE_MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
"""Manifests made of a config and layers."""

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
"""Manifests made of other manifests."""

MANIFEST_MEDIA_TYPES = IMAGE_MANIFEST_MEDIA_TYPES | INDEX_MEDIA_TYPES
"""Every manifest media type arca accepts on PUT."""

# Content-Types that say nothing about the manifest format; a client sending one is
# treated as if it had sent none, and the body's `mediaType` decides.
GENERIC_CONTENT_TYPES = frozenset({"application/json", "application/octet-stream"})

# RFC 6838 §4.2: type "/" subtype, each restricted-name (1 + up to 126 chars).
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


def is_media_type(value: object) -> bool:
    """True for a well-formed `type/subtype` (RFC 6838 §4.2), parameters not allowed."""
    return isinstance(value, str) and _MEDIA_TYPE.fullmatch(value) is not None


def normalize_content_type(header: str | None) -> str | None:
    """The media type of a Content-Type header: parameters dropped, lowercased.

    None when the header is absent or blank. The distribution spec asks registries to
    ignore parameters, and media types compare case-insensitively (RFC 6838 §4.2).
    """
    if header is None:
        return None
    media_type = header.partition(";")[0].strip().lower()
    return media_type or None


def is_manifest_media_type(value: str | None) -> bool:
    return value in MANIFEST_MEDIA_TYPES


def is_index_media_type(value: str | None) -> bool:
    return value in INDEX_MEDIA_TYPES
