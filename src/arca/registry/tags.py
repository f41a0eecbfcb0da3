"""Tags: mutable pointers from a name to a manifest digest, with their history.

A tag is one small object (`current/link`) written atomically, so two writers
racing on one tag end with one winner and never a torn pointer. The previous
target is remembered under `index/` for history and for garbage collection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arca.errors import ManifestUnknown, NameUnknown
from arca.formats.digest import Digest
from arca.registry.events import Publisher, TagDeleted, TagMoved
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound


@dataclass(frozen=True, slots=True)
class TagPage:
    tags: list[str]
    more: bool


class TagStore:
    """Every tag change goes through here, so each one publishes its event."""

    def __init__(self, driver: Driver, events: Publisher | None = None) -> None:
        self._driver = driver
        self._events = events or Publisher()

    async def resolve(self, name: str, tag: str) -> Digest:
        try:
            raw = await self._driver.get(layout.tag_current(name, tag))
        except PathNotFound:
            raise ManifestUnknown(f"{name}:{tag}") from None
        return Digest.parse(raw.decode())

    async def set(self, name: str, tag: str, digest: Digest) -> None:
        """Point `tag` at `digest` (and remember it in the tag's history)."""
        path = layout.tag_current(name, tag)
        try:
            previous: Digest | None = Digest.parse((await self._driver.get(path)).decode())
        except PathNotFound:
            previous = None
        if previous != digest:
            await self._driver.put(path, str(digest).encode())
            await self._driver.put(layout.tag_history(name, tag, digest), str(digest).encode())
            await self._events.publish(
                TagMoved(repository=name, tag=tag, digest=digest, previous=previous)
            )

    async def delete(self, name: str, tag: str) -> Digest:
        digest = await self.resolve(name, tag)
        await self._driver.delete(layout.tag_dir(name, tag))
        await self._events.publish(TagDeleted(repository=name, tag=tag, digest=digest))
        return digest

    async def delete_pointing_at(self, name: str, digest: Digest) -> tuple[str, ...]:
        """Delete every tag whose target is `digest` (a manifest delete); the tags removed."""
        removed = []
        for tag in await self.pointing_at(name, digest):
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(layout.tag_dir(name, tag))
                removed.append(tag)
                await self._events.publish(TagDeleted(repository=name, tag=tag, digest=digest))
        return tuple(removed)

    async def page(self, name: str, limit: int, last: str | None) -> TagPage:
        """Up to `limit` tags after `last`, lexically; NAME_UNKNOWN for a missing repo."""
        names: list[str] = []
        async for tag in self._driver.list(layout.tags(name), start_after=last):
            if len(names) == limit:
                return TagPage(names, more=True)
            names.append(tag)
        if not names and last is None and not await repository_exists(self._driver, name):
            raise NameUnknown(name)
        return TagPage(names, more=False)

    async def all(self, name: str) -> AsyncIterator[tuple[str, Digest]]:
        """Every tag of `name` with its current target, lexically (a tag deleted while
        listing is skipped)."""
        async for tag in self._driver.list(layout.tags(name)):
            try:
                yield tag, await self.resolve(name, tag)
            except ManifestUnknown:
                continue

    async def pointing_at(self, name: str, digest: Digest) -> list[str]:
        """Every tag whose current target is `digest` (a scan: deletes are rare)."""
        found = []
        async for tag in self._driver.list(layout.tags(name)):
            try:
                if await self.resolve(name, tag) == digest:
                    found.append(tag)
            except ManifestUnknown:
                continue
        return found


async def repository_exists(driver: Driver, name: str) -> bool:
    async for child in driver.list(layout.repository(name)):
        if child in (layout.MANIFESTS_DIR, layout.LAYERS_DIR):
            return True
    return False
