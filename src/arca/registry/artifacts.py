"""arca artifacts: a canonical CBOR document stored as an OCI manifest, and back.

PUT of the CBOR document checks every file against the blobs it names (size, sha256
and blake3), stores the document as the config blob, and stores the OCI manifest
generated from it, so every OCI tool sees an ordinary artifact. The CBOR view of a
manifest is the stored document when the manifest is exactly the one arca generates
for it, and otherwise a view derived from the OCI manifest and blob metadata.
"""

from __future__ import annotations

import json

from arca.errors import (
    BlobUnknown,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
)
from arca.formats.artifact import (
    check_oci_manifest,
    decode_artifact,
    encode_artifact,
    from_oci_manifest,
    is_arca_manifest,
    to_oci_manifest,
)
from arca.formats.digest import Digest
from arca.formats.mediatypes import OCI_MANIFEST, is_index_media_type
from arca.registry.blobs import BlobStore
from arca.registry.manifests import ManifestStore, PutResult, StoredManifest


class ArtifactStore:
    def __init__(self, blobs: BlobStore, manifests: ManifestStore) -> None:
        self._blobs = blobs
        self._manifests = manifests

    async def put(
        self, name: str, reference: str, document: bytes, extra_tags: tuple[str, ...] = ()
    ) -> PutResult:
        if len(document) > self._manifests.max_bytes:
            raise ManifestTooLarge(len(document), self._manifests.max_bytes)
        artifact = decode_artifact(document)
        for file in artifact.files:
            try:
                info = await self._blobs.stat(name, file.sha256)
            except BlobUnknown:
                raise ManifestBlobUnknown(file.sha256) from None
            if info.size != file.size:
                raise ManifestInvalid(
                    f"file {file.path!r} says {file.size} bytes but blob {file.sha256}"
                    f" has {info.size}",
                    {"path": file.path, "digest": str(file.sha256)},
                )
            meta = await self._blobs.meta(file.sha256)
            if meta.blake3 != file.blake3:
                raise ManifestInvalid(
                    f"file {file.path!r} says {file.blake3} but blob {file.sha256}"
                    f" has {meta.blake3}",
                    {"path": file.path, "digest": str(file.sha256)},
                )
        config = Digest.of(document)
        manifest = to_oci_manifest(artifact, document)
        quotas = self._manifests.quotas
        config_is_new = (
            quotas is not None
            and quotas.covers(name)
            and not await self._blobs.is_linked(name, config)
        )
        await self._manifests.admit(
            name,
            reference,
            manifest,
            extra_tags,
            artifact.subject is not None,
            len(document) if config_is_new else 0,
        )
        await self._blobs.put_small(document, config)
        await self._blobs.link(name, config)
        if config_is_new and quotas is not None:
            quotas.added(name, len(document))
        return await self._manifests.put(name, reference, manifest, OCI_MANIFEST, extra_tags)

    async def view(self, name: str, reference: str) -> tuple[StoredManifest, bytes]:
        """The manifest and its CBOR view."""
        stored = await self._manifests.get(name, reference)
        if is_index_media_type(stored.revision.media_type):
            raise ManifestUnknown(f"{name}:{reference} is an index; it has no artifact view")
        manifest = json.loads(stored.data)
        # A real arca document is never larger than a manifest may be: a config blob
        # that is must not be read into memory on the strength of its media type.
        config = manifest.get("config") or {}
        if is_arca_manifest(manifest) and config.get("size", 0) <= self._manifests.max_bytes:
            document = await self._blobs.read_all(Digest.parse(config["digest"]))
            try:
                check_oci_manifest(stored.data, document)
            except ManifestInvalid:
                pass  # an arca config under a manifest arca did not generate: derive
            else:
                return stored, document
        blake3_of = {}
        for layer in manifest.get("layers", []):
            digest = Digest.parse(layer["digest"])
            try:
                meta = await self._blobs.meta(digest)
            except BlobUnknown:
                # A foreign (URL-only) layer: accepted by the manifest PUT, never stored
                # here, so no file of a view could be fetched or checked.
                raise ManifestUnknown(
                    f"{name}:{reference} has no artifact view: layer {digest} is not"
                    " stored in this registry (a foreign, URL-only layer)"
                ) from None
            if meta.blake3 is not None:
                blake3_of[str(digest)] = str(meta.blake3)
        tag = None if ":" in reference else reference
        try:
            artifact = from_oci_manifest(manifest, blake3_of, name, tag)
        except ManifestInvalid as error:
            # The manifest is fine; it just has no artifact view (e.g. no layers).
            raise ManifestUnknown(
                f"{name}:{reference} has no artifact view: {error.message}"
            ) from None
        return stored, encode_artifact(artifact)
