"""Verification: re-read every blob of an artifact and compare what storage holds now
with what the artifact says (size, sha256 and blake3), blob by blob.

The expected values come from the artifact's CBOR view (each file's size and both
digests) and, for the manifest and config blobs, from their address and the blob
metadata recorded when they were stored. Bytes are read through `BlobStore`, never a
cache, so corruption on disk shows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from arca.errors import BlobUnknown, RegistryError
from arca.formats.artifact import decode_artifact
from arca.formats.digest import Digest, MultiHasher
from arca.formats.manifest import parse_manifest
from arca.registry.artifacts import ArtifactStore
from arca.registry.blobs import BlobStore
from arca.registry.manifests import ManifestStore

_INLINE_BYTES = 64 << 10  # smaller updates hash on the event loop; larger in a thread


@dataclass(frozen=True, slots=True)
class Hashes:
    size: int | None
    sha256: Digest | None
    blake3: Digest | None


@dataclass(frozen=True, slots=True)
class BlobCheck:
    """One blob: `actual` is None when it is missing from storage."""

    kind: str
    """`manifest`, `config` or `file`."""
    path: str | None
    media_type: str
    digest: Digest
    expected: Hashes
    actual: Hashes | None

    @property
    def problems(self) -> list[str]:
        if self.actual is None:
            return [f"missing: blob {self.digest} is not in storage"]
        found = []
        if self.expected.size is not None and self.actual.size != self.expected.size:
            found.append(f"size: expected {self.expected.size} bytes, found {self.actual.size}")
        for algorithm in ("sha256", "blake3"):
            expected, actual = getattr(self.expected, algorithm), getattr(self.actual, algorithm)
            if expected is not None and actual != expected:
                found.append(f"{algorithm}: expected {expected}, found {actual}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class Verification:
    name: str
    digest: Digest
    checks: list[BlobCheck]
    problems: list[str] = field(default_factory=list)
    """What kept a check from running (an unreadable artifact view)."""

    @property
    def ok(self) -> bool:
        return not self.problems and all(check.ok for check in self.checks)


class Verifier:
    def __init__(
        self, blobs: BlobStore, manifests: ManifestStore, artifacts: ArtifactStore
    ) -> None:
        self._blobs = blobs
        self._manifests = manifests
        self._artifacts = artifacts

    async def verify(self, name: str, reference: str) -> Verification:
        revision = await self._manifests.revision(name, reference)
        hashed: dict[Digest, Hashes | None] = {}

        async def check(
            kind: str, path: str | None, media_type: str, digest: Digest, expected: Hashes
        ) -> BlobCheck:
            if digest not in hashed:
                # A manifest is a blob of the repository through its revision link,
                # not a layer link, which is checked by `revision` above.
                hashed[digest] = await self._hash(None if kind == "manifest" else name, digest)
            return BlobCheck(kind, path, media_type, digest, expected, hashed[digest])

        checks = [
            await check(
                "manifest",
                None,
                revision.media_type,
                revision.digest,
                await self._recorded(revision.digest, revision.size),
            )
        ]
        try:
            stored, document = await self._artifacts.view(name, str(revision.digest))
            manifest = parse_manifest(stored.data, revision.media_type)
            artifact = decode_artifact(document)
        except (RegistryError, ValueError) as error:
            problem = f"cannot read the artifact: {getattr(error, 'message', error)}"
            return Verification(name, revision.digest, checks, [problem])
        if manifest.config is not None:
            config = manifest.config
            expected = await self._recorded(config.digest, config.size)
            checks.append(await check("config", None, config.media_type, config.digest, expected))
        for file in artifact.files:
            expected = Hashes(file.size, file.sha256, file.blake3)
            checks.append(await check("file", file.path, file.media_type, file.sha256, expected))
        return Verification(name, revision.digest, checks)

    async def _recorded(self, digest: Digest, size: int) -> Hashes:
        """What the blob was when stored: its address, and the meta written then."""
        meta = await self._blobs.recorded_meta(digest)
        sha256 = digest if digest.algorithm == "sha256" else (meta.sha256 if meta else None)
        return Hashes(size, sha256, meta.blake3 if meta else None)

    async def _hash(self, name: str | None, digest: Digest) -> Hashes | None:
        """Size and both digests of the stored bytes; None if missing (or not linked
        into repository `name`)."""
        try:
            if name is not None:
                await self._blobs.stat(name, digest)
            hasher = MultiHasher.of("sha256", "blake3")
            async for chunk in self._blobs.read(digest):
                if len(chunk) < _INLINE_BYTES:
                    hasher.update(chunk)
                else:
                    await asyncio.to_thread(hasher.update, chunk)
        except BlobUnknown:
            return None
        digests = hasher.digests()
        return Hashes(hasher.size, digests["sha256"], digests["blake3"])
