"""Manifests: validated on PUT, stored as blobs, linked as revisions, served as received.

A revision link holds a small JSON record (media type, size, subject) so that GET
needs no parse and DELETE knows which referrer entry to drop. Manifest bytes are
immutable by digest, so this process caches them; whether a repository still has a
manifest is always asked of storage (the revision link), never of the cache.

A push racing a delete of the same manifest (on any replica) ends as if one ran
after the other (docs/layout.md, "Tags under concurrent writers"): the revision link
is created only if absent and carries a *generation* (a random id), tags and
referrer entries name the generation they were written for, and
- a push creates (or adopts) the revision, writes referrer entry and tags, then
  checks the revision still has its generation, else pushes again: a push that
  returns succeeded after any delete it raced with;
- a delete removes the tags of that generation, deletes the revision link (if it
  still is that generation), then removes the tags and referrer entry of that
  generation again: those set by a push it raced with before the link went.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from arca.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    Unavailable,
)
from arca.formats.artifact import labels_from_annotations
from arca.formats.digest import Digest
from arca.formats.manifest import Manifest, parse_manifest
from arca.formats.reference import parse_reference, validate_tag
from arca.registry.blobs import BlobStore
from arca.registry.events import (
    ManifestDeleted,
    ManifestPulled,
    ManifestPushed,
    ManifestRestored,
    Publisher,
)
from arca.registry.referrers import ReferrerStore
from arca.registry.reuse import Claim, Reuse
from arca.registry.tags import TagStore
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

if TYPE_CHECKING:
    from arca.registry.quotas import Quotas

log = logging.getLogger(__name__)

# Schema validation costs ~35 µs per layer: big manifests parse off the event loop.
_PARSE_INLINE_BYTES = 64 << 10
# A push retries when a concurrent delete removed its revision; each retry needs
# another delete of the same manifest in the same milliseconds.
_PUSH_ATTEMPTS = 10
# Validated manifests remembered (a few recent ones: re-pushes come close together).
_PARSED_ENTRIES = 256


@dataclass(frozen=True, slots=True)
class Revision:
    digest: Digest
    media_type: str
    size: int
    subject: Digest | None = None
    generation: str | None = None
    """A fresh id each time the link is created (None in links written before)."""

    def encode(self) -> bytes:
        record = {"digest": str(self.digest), "mediaType": self.media_type, "size": self.size}
        if self.subject is not None:
            record["subject"] = str(self.subject)
        if self.generation is not None:
            record["generation"] = self.generation
        return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Revision:
        record = json.loads(data)
        subject = record.get("subject")
        return cls(
            Digest.parse(record["digest"]),
            record["mediaType"],
            record["size"],
            Digest.parse(subject) if subject else None,
            record.get("generation"),
        )


@dataclass(frozen=True, slots=True)
class StoredManifest:
    revision: Revision
    data: bytes


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: Digest
    subject: Digest | None
    tags: tuple[str, ...] = field(default=())


class _ContentCache:
    """Manifest bytes by digest, bounded by total size (content is immutable)."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[Digest, bytes] = OrderedDict()

    def get(self, digest: Digest) -> bytes | None:
        data = self._items.get(digest)
        if data is not None:
            self._items.move_to_end(digest)
        return data

    def put(self, digest: Digest, data: bytes) -> None:
        if digest in self._items or len(data) > self._max:
            return
        self._items[digest] = data
        self._size += len(data)
        while self._size > self._max:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted)


class ManifestStore:
    def __init__(
        self,
        driver: Driver,
        blobs: BlobStore,
        tags: TagStore,
        referrers: ReferrerStore,
        reuse: Reuse,
        max_bytes: int,
        cache_bytes: int = 64 << 20,
        events: Publisher | None = None,
        pull_sample_rate: float = 0.0,
    ) -> None:
        self._driver = driver
        self._blobs = blobs
        self._tags = tags
        self._referrers = referrers
        self._reuse = reuse
        self.max_bytes = max_bytes
        self._cache = _ContentCache(cache_bytes)
        self._parsed: OrderedDict[tuple[Digest, str | None], Manifest] = OrderedDict()
        """Validated manifests by digest and Content-Type: the same bytes pushed again
        (one manifest under many tags) are not validated again (~0.5 ms each)."""
        self._events = events or Publisher()
        self._pull_sample_rate = pull_sample_rate
        self.quotas: Quotas | None = None
        """Set by `Registry` when `[[quotas]]` are configured."""

    async def resolve(self, name: str, reference: str) -> Digest:
        target = _parse(reference, reading=True)
        if isinstance(target, Digest):
            return target
        return await self._tags.resolve(name, target)

    async def revision(self, name: str, reference: str) -> Revision:
        target = _parse(reference, reading=True)
        if isinstance(target, Digest):
            return await self._revision(name, target)
        link = await self._tags.link(name, target)
        revision = await self._revision(name, link.digest)
        if link.generation is not None and link.generation != revision.generation:
            # Set against a revision since deleted (the manifest was pushed again later):
            # what the tag named is gone.
            raise ManifestUnknown(f"{name}:{target}")
        return revision

    async def _revision(self, name: str, digest: Digest) -> Revision:
        try:
            return Revision.decode(await self._driver.get(layout.revision_link(name, digest)))
        except PathNotFound:
            raise ManifestUnknown(f"{name}@{digest}") from None

    async def revisions(self, name: str) -> AsyncIterator[tuple[Revision, float]]:
        """Every manifest revision of `name` with its link's last write time (a
        revision deleted while walking is skipped)."""
        async for info in self._driver.walk(layout.revisions(name)):
            digest = layout.parse_revision_link(name, info.path)
            if digest is None:
                continue
            try:
                yield Revision.decode(await self._driver.get(info.path)), info.modified
            except PathNotFound:
                continue

    async def get(self, name: str, reference: str) -> StoredManifest:
        revision = await self.revision(name, reference)
        data = self._cache.get(revision.digest)
        if data is None:
            data = await self._blobs.read_all(revision.digest)
            self._cache.put(revision.digest, data)
        return StoredManifest(revision, data)

    async def pull(self, name: str, reference: str) -> StoredManifest:
        """`get` for a client's GET: publishes a sampled pull event (off by default)."""
        stored = await self.get(name, reference)
        rate = self._pull_sample_rate
        if rate > 0 and (rate >= 1 or random.random() < rate):
            await self._events.publish(
                ManifestPulled(repository=name, digest=stored.revision.digest, reference=reference)
            )
        return stored

    async def put(
        self,
        name: str,
        reference: str,
        data: bytes,
        content_type: str | None,
        extra_tags: tuple[str, ...] = (),
    ) -> PutResult:
        if len(data) > self.max_bytes:
            raise ManifestTooLarge(len(data), self.max_bytes)
        digest, tags = _targets(reference, data, extra_tags)
        manifest = self._parsed.get((digest, content_type))
        if manifest is None:
            if len(data) > _PARSE_INLINE_BYTES:
                manifest = await asyncio.to_thread(parse_manifest, data, content_type)
            else:
                manifest = parse_manifest(data, content_type)
            if len(data) <= _PARSE_INLINE_BYTES:
                self._parsed[(digest, content_type)] = manifest
                if len(self._parsed) > _PARSED_ENTRIES:
                    self._parsed.popitem(last=False)
        new = await self.admit(name, reference, data, extra_tags, manifest.subject is not None)
        await self._check_references(name, manifest)
        result = await self._store(name, digest, data, manifest, tags)
        if new and self.quotas is not None:
            self.quotas.added(name, len(data), 0 if manifest.subject is not None else 1)
        return result

    async def admit(
        self,
        name: str,
        reference: str,
        data: bytes,
        extra_tags: tuple[str, ...] = (),
        has_subject: bool = False,
        extra_bytes: int = 0,
    ) -> bool:
        """Refuse, before anything is stored, a push of `data` that would move an
        immutable tag or go over a quota (docs/protection.md). `extra_bytes`: what the
        caller stores beside the manifest (a CBOR document's config blob). Whether
        a quota counts this manifest as new."""
        digest, tags = _targets(reference, data, extra_tags)
        await self._tags.check_move(name, tags, digest)
        if self.quotas is None or not self.quotas.covers(name):
            return False
        if await self._driver.exists(layout.revision_link(name, digest)):
            return False
        await self.quotas.admit(name, len(data) + extra_bytes, 0 if has_subject else 1)
        return True

    async def delete(self, name: str, reference: str) -> Digest:
        """Delete by tag removes the tag; by digest, the manifest and every tag on it."""
        target = _parse(reference, reading=True)
        if not isinstance(target, Digest):
            return await self._tags.delete(name, target)
        path = layout.revision_link(name, target)
        if self._tags.immutability.covers(name):
            # Refused before anything goes: a protected tag would go with the manifest.
            for tag, _ in await self._tags.links_to(name, target):
                self._tags.check_remove(name, tag, target)
        untagged: list[str] = []
        while True:
            try:
                raw = await self._driver.get(path)
            except PathNotFound:
                raise ManifestUnknown(f"{name}@{target}") from None
            revision = Revision.decode(raw)
            untagged += await self._untag(name, revision)
            if await self._driver.delete_if(path, raw):
                break
            # Deleted by another request, or pushed again since we read it: look again.
        # Tags a racing push set for this generation before the link went (its own
        # check then finds the link gone and pushes again, with a new generation).
        untagged += await self._untag(name, revision)
        if revision.subject is not None:
            await self._referrers.remove(name, revision.subject, target, revision.generation)
        await self._events.publish(
            ManifestDeleted(repository=name, digest=target, tags=tuple(untagged))
        )
        return target

    async def announce_deleted(self, name: str, digest: Digest) -> None:
        """Publish that a manifest left `name` by another path than `delete`
        (garbage collection)."""
        await self._events.publish(ManifestDeleted(repository=name, digest=digest, reason="gc"))

    async def announce_restored(self, name: str, digest: Digest, tags: tuple[str, ...]) -> None:
        """Publish that a manifest came back (restored from the trash)."""
        stored = await self.get(name, str(digest))
        manifest = parse_manifest(stored.data, stored.revision.media_type)
        await self._events.publish(
            ManifestRestored(
                repository=name,
                digest=digest,
                media_type=stored.revision.media_type,
                size=stored.revision.size,
                tags=tags,
                artifact_type=manifest.artifact_type,
                subject_digest=stored.revision.subject,
                labels=labels_from_annotations(dict(manifest.annotations or {})),
                manifest=manifest,
            )
        )

    async def _untag(self, name: str, revision: Revision) -> list[str]:
        """Remove the tags set for this revision's generation; the ones removed."""
        removed = []
        for tag, link in await self._tags.links_to(name, revision.digest):
            if link.generation in (None, revision.generation) and await self._tags.untag(
                name, tag, link
            ):
                removed.append(tag)
        return removed

    async def _check_references(self, name: str, manifest: Manifest) -> None:
        """Every blob and child must be in the repository, and is claimed so that no
        collector removes it under this push (arca.registry.reuse); asked
        concurrently, since on an object store each question is a round trip."""
        claims = [self._blobs.link_claim(name, d.digest) for d in manifest.blobs]
        claims += [self._revision_claim(name, d.digest) for d in manifest.children]
        found = await self._reuse.claim(claims)
        for descriptor, present in zip([*manifest.blobs, *manifest.children], found, strict=True):
            if not present:
                raise ManifestBlobUnknown(descriptor.digest)

    def _revision_claim(self, name: str, digest: Digest) -> Claim:
        path = layout.revision_link(name, digest)

        async def touch() -> None:
            with contextlib.suppress(PathNotFound):
                await self._driver.put(path, await self._driver.get(path))

        return Claim(path, touch, requires=(layout.blob_data(digest),))

    async def _store(
        self, name: str, digest: Digest, data: bytes, manifest: Manifest, tags: tuple[str, ...]
    ) -> PutResult:
        meta, new_content = await self._blobs.put_small_data(data, digest)
        # Its metadata is written while the revision and tags are: the index (a
        # follower of the event below) is the first to read it.
        recording = asyncio.ensure_future(self._blobs.record_meta(meta, look_first=not new_content))
        try:
            return await self._link(name, digest, data, manifest, tags, recording, new_content)
        finally:
            if not recording.done():  # failed before waiting for it: let it finish
                await asyncio.wait([recording])
            if not recording.cancelled():
                recording.exception()  # retrieved (raised already if it mattered)

    async def _link(
        self,
        name: str,
        digest: Digest,
        data: bytes,
        manifest: Manifest,
        tags: tuple[str, ...],
        recording: asyncio.Future[None],
        new_content: bool = False,
    ) -> PutResult:
        self._cache.put(digest, data)
        subject = manifest.subject.digest if manifest.subject is not None else None
        fresh = Revision(digest, manifest.media_type, len(data), subject)
        pushed = ManifestPushed(
            repository=name,
            digest=digest,
            media_type=manifest.media_type,
            size=len(data),
            tags=tags,
            artifact_type=manifest.artifact_type,
            subject_digest=subject,
            labels=labels_from_annotations(dict(manifest.annotations or {})),
            manifest=manifest,
        )
        async with self._events.batch():
            await self._events.publish(pushed)
            for attempt in range(_PUSH_ATTEMPTS):
                revision, created = await self._create_revision(
                    name, fresh, likely_absent=new_content and attempt == 0
                )
                if created:
                    await self._reuse.written(layout.revision_link(name, digest), revision.encode())
                elif not (await self._reuse.claim([self._revision_claim(name, digest)]))[0]:
                    # Adopting a stored revision re-uses it (an old build tagged again):
                    # claimed, like a layer, or a collector judging it untagged could
                    # sweep it under the tag. Lost to a collector: create it again.
                    continue
                if manifest.subject is not None:
                    await self._referrers.add(
                        name,
                        manifest.subject.digest,
                        referrer_descriptor(revision, manifest),
                        revision.generation,
                    )
                for tag in tags:
                    await self._tags.set(name, tag, digest, revision.generation)
                if await self._generation(name, digest) == (True, revision.generation):
                    break
            else:
                raise Unavailable(f"{name}@{digest} was deleted while being pushed; push again")
            await recording  # before the event goes to the index
        return PutResult(digest, subject, tags)

    async def _create_revision(
        self, name: str, fresh: Revision, likely_absent: bool = False
    ) -> tuple[Revision, bool]:
        """The revision link: created with a new generation (True), or the one
        already there (False). `likely_absent`: the manifest's content was stored by
        this push, so no revision of it can be expected (no read first; one there
        anyway is found by the create-only write and adopted)."""
        path = layout.revision_link(name, fresh.digest)
        while True:
            # Read first: a re-push (the common case) adopts the link without a failed
            # write, and a backend that cannot refuse an overwrite keeps the generation.
            if not likely_absent:
                with contextlib.suppress(PathNotFound):
                    return Revision.decode(await self._driver.get(path)), False
            likely_absent = False
            revision = replace(fresh, generation=uuid.uuid4().hex)
            try:
                await self._driver.put(path, revision.encode(), if_absent=True)
            except AlreadyExists:
                try:
                    return Revision.decode(await self._driver.get(path)), False
                except PathNotFound:
                    continue  # deleted between the two calls: create it
            return revision, True

    async def _generation(self, name: str, digest: Digest) -> tuple[bool, str | None]:
        """Whether the revision link exists, and its generation."""
        try:
            return True, (await self._revision(name, digest)).generation
        except ManifestUnknown:
            return False, None


def referrer_descriptor(revision: Revision, manifest: Manifest) -> dict[str, object]:
    descriptor: dict[str, object] = {
        "mediaType": revision.media_type,
        "digest": str(revision.digest),
        "size": revision.size,
    }
    if manifest.artifact_type:
        descriptor["artifactType"] = manifest.artifact_type
    if manifest.annotations:
        descriptor["annotations"] = dict(manifest.annotations)
    return descriptor


def _targets(
    reference: str, data: bytes, extra_tags: tuple[str, ...]
) -> tuple[Digest, tuple[str, ...]]:
    """The digest a PUT of `data` to `reference` stores, and the tags it sets."""
    target = _parse(reference, reading=False)
    tags = tuple(validate_tag(tag) for tag in extra_tags)
    if isinstance(target, Digest):
        digest = Digest.of(data, target.algorithm)
        if digest != target:
            raise DigestInvalid(
                f"manifest digest {digest} does not match the reference {target}",
                {"expected": str(target), "actual": str(digest)},
            )
        return digest, tags
    return Digest.of(data), (target, *tags)


def _parse(reference: str, *, reading: bool) -> Digest | str:
    """A tag or digest; a malformed tag cannot name anything, so reading it is a 404."""
    try:
        return parse_reference(reference)
    except ManifestInvalid:
        if reading:
            raise ManifestUnknown(reference) from None
        raise
