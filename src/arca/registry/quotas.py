"""Quotas: `[[quotas]]` limits per repository, checked before a push stores anything.

What counts (docs/protection.md, "Quotas"), per repository, every matching rule on
its own:
- bytes: the size of every distinct blob linked into the repository (layers, configs,
  a CBOR document) plus the size of every manifest revision in it. A blob shared with
  another repository counts in both; a blob linked twice counts once.
- artifacts: manifest revisions without a subject (a signature, an SBOM or a label
  artifact is not an artifact of its own; its bytes still count).

There is no database, so usage is counted from storage (one listing of the links and
revisions, one stat per blob) and each replica keeps the count for
`[protection] usage_cache_seconds`, adding what its own pushes add. A refusal always
counts again first, so a stale count never refuses wrongly for long. The overshoot
window: pushes running at once (on one replica, or on several within the cache
time) are each checked against usage without the others, so together they can pass
the limit by at most what they add; a later push is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from arca.auth.policy import glob_matches
from arca.config import QuotaRule
from arca.errors import QuotaExceeded
from arca.formats.digest import Digest
from arca.registry.blobs import BlobStore
from arca.registry.events import BlobUnlinked, DomainEvent, ManifestDeleted
from arca.registry.manifests import ManifestStore
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound

_STATS_AT_ONCE = 32
_CACHED_REPOSITORIES = 10_000


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int
    artifacts: int
    counted: float = 0.0
    """time.monotonic() of the count this is based on."""


@dataclass(frozen=True, slots=True)
class QuotaReport:
    """One rule's limits for one repository, beside its usage (`arca quota`)."""

    name: str
    rule: str
    usage: Usage
    max_bytes: int
    max_artifacts: int


class Quotas:
    def __init__(
        self,
        driver: Driver,
        blobs: BlobStore,
        manifests: ManifestStore,
        rules: Sequence[QuotaRule],
        cache_seconds: float,
    ) -> None:
        self._driver = driver
        self._blobs = blobs
        self._manifests = manifests
        self.rules = tuple(rules)
        self._cache_seconds = cache_seconds
        self._cache: OrderedDict[str, Usage] = OrderedDict()

    def rules_for(self, name: str) -> list[QuotaRule]:
        return [r for r in self.rules if any(glob_matches(g, name) for g in r.repositories)]

    def covers(self, name: str) -> bool:
        return bool(self.rules_for(name))

    async def usage(self, name: str, *, fresh: bool = False) -> Usage:
        cached = self._cache.get(name)
        if (
            not fresh
            and cached is not None
            and time.monotonic() - cached.counted < self._cache_seconds
        ):
            return cached
        usage = await self.count(name)
        self._cache[name] = usage
        self._cache.move_to_end(name)
        while len(self._cache) > _CACHED_REPOSITORIES:
            self._cache.popitem(last=False)
        return usage

    async def count(self, name: str) -> Usage:
        """Usage of `name` as storage holds it now."""
        started = time.monotonic()
        total = artifacts = 0
        async for revision, _ in self._manifests.revisions(name):
            total += revision.size
            artifacts += revision.subject is None
        digests = [digest async for digest, _ in self._blobs.links(name)]
        for start in range(0, len(digests), _STATS_AT_ONCE):
            sizes = await asyncio.gather(
                *(self._size(d) for d in digests[start : start + _STATS_AT_ONCE])
            )
            total += sum(sizes)
        return Usage(total, artifacts, started)

    async def _size(self, digest: Digest) -> int:
        try:
            return (await self._driver.stat(layout.blob_data(digest))).size
        except PathNotFound:
            return 0  # a dangling link (being collected) holds nothing

    async def admit(self, name: str, adding_bytes: int, adding_artifacts: int = 0) -> None:
        """Raise QuotaExceeded if `name` cannot take `adding_bytes` and `adding_artifacts`
        more under every rule that names it (counting again before refusing)."""
        rules = self.rules_for(name)
        if not rules:
            return
        usage = await self.usage(name)
        if _over(rules, usage, adding_bytes, adding_artifacts) is not None:
            usage = await self.usage(name, fresh=True)
        refused = _over(rules, usage, adding_bytes, adding_artifacts)
        if refused is None:
            return
        rule, what = refused
        if what == "max_bytes":
            raise QuotaExceeded(name, rule.name, what, usage.bytes, adding_bytes, rule.max_bytes)
        raise QuotaExceeded(
            name, rule.name, what, usage.artifacts, adding_artifacts, rule.max_artifacts
        )

    def room(self, name: str, usage: Usage) -> int | None:
        """Bytes `name` can still take under its tightest byte limit (None: no limit)."""
        limits = [r.max_bytes for r in self.rules_for(name) if r.max_bytes]
        return None if not limits else max(min(limits) - usage.bytes, 0)

    async def capped(
        self, name: str, body: AsyncIterator[bytes], offset: int, length: int | None
    ) -> AsyncIterator[bytes]:
        """An upload chunk for `name` whose session already holds `offset` bytes: refused
        at once when its declared `length` would go over quota, else stopped before the
        first block that would (the bytes before stay in the session)."""
        if not self.covers(name):
            return body
        if length is not None:
            await self.admit(name, offset + length)
            return body
        usage = await self.usage(name)
        room = self.room(name, usage)
        if room is None:
            return body
        return self._limited(name, body, offset, room)

    async def _limited(
        self, name: str, body: AsyncIterator[bytes], offset: int, room: int
    ) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in body:
            received += len(chunk)
            if offset + received > room:
                await self.admit(name, offset + received)  # counts again, or refuses
                fresh = self.room(name, await self.usage(name))
                room = room if fresh is None else fresh
            yield chunk

    def added(self, name: str, stored_bytes: int, artifacts: int = 0) -> None:
        """A push of this replica stored this much more in `name`."""
        cached = self._cache.get(name)
        if cached is not None:
            self._cache[name] = replace(
                cached, bytes=cached.bytes + stored_bytes, artifacts=cached.artifacts + artifacts
            )

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    async def report(self, names: Sequence[str]) -> list[QuotaReport]:
        reports = []
        for name in names:
            rules = self.rules_for(name)
            if not rules:
                continue
            usage = await self.usage(name, fresh=True)
            reports += [
                QuotaReport(name, rule.name, usage, rule.max_bytes, rule.max_artifacts)
                for rule in rules
            ]
        return reports

    # -- EventSink: deletes (on this replica) make the count stale at once ----------------

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            if isinstance(event, ManifestDeleted | BlobUnlinked):
                self.forget(event.repository)


def _over(
    rules: Sequence[QuotaRule], usage: Usage, adding_bytes: int, adding_artifacts: int
) -> tuple[QuotaRule, str] | None:
    for rule in rules:
        if rule.max_bytes and adding_bytes and usage.bytes + adding_bytes > rule.max_bytes:
            return rule, "max_bytes"
        if (
            rule.max_artifacts
            and adding_artifacts
            and usage.artifacts + adding_artifacts > rule.max_artifacts
        ):
            return rule, "max_artifacts"
    return None
