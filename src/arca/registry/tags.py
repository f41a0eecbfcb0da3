"""Tags: mutable pointers from a name to a manifest digest, with their history.

A tag is one small object (`current/link`) written atomically, so two writers
racing on one tag end with one winner and never a torn pointer. The targets it had
before are remembered under `index/` for history and for garbage collection.

Racing writers (docs/layout.md, "Tags under concurrent writers"):
- `set` writes the history entry before the pointer, and `untag` removes the pointer
  (only if it still holds what the caller read: `Driver.delete_if`) before the
  history. So whenever the last thing to happen to a pointer was its removal, every
  history entry was written before it and is removed after it: a tag directory never
  outlives its pointer, and tags/list never names a tag that does not resolve.
- A tag an `[[immutability]]` rule protects (arca.registry.protection) is created
  only if absent, so two pushes racing to create it end with exactly one winner (the
  other is refused), and it is never moved to another digest nor removed.
- A link names the *generation* of the manifest's revision it was set against
  (`ManifestStore`): a manifest deleted and pushed again is a new generation, so a
  delete by digest removes exactly the tags set before it, never those of a push
  that came after.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arca.errors import ManifestUnknown, NameUnknown, TagImmutable
from arca.formats.digest import Digest
from arca.registry.events import Publisher, TagDeleted, TagMoved
from arca.registry.protection import Immutability
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

# How often `delete` re-reads a tag that a concurrent push moved between read and delete.
_DELETE_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class TagPage:
    tags: list[str]
    more: bool


@dataclass(frozen=True, slots=True)
class TagLink:
    """What `current/link` holds: the digest, then the revision's generation if known
    (links written before generations existed hold the digest alone)."""

    digest: Digest
    generation: str | None = None

    def encode(self) -> bytes:
        if self.generation is None:
            return str(self.digest).encode()
        return f"{self.digest} {self.generation}".encode()

    @classmethod
    def decode(cls, data: bytes) -> TagLink:
        digest, _, generation = data.decode().strip().partition(" ")
        return cls(Digest.parse(digest), generation or None)


class TagStore:
    """Every tag change goes through here, so each one publishes its event."""

    def __init__(
        self,
        driver: Driver,
        events: Publisher | None = None,
        immutability: Immutability | None = None,
    ) -> None:
        self._driver = driver
        self._events = events or Publisher()
        self.immutability = immutability or Immutability()

    async def check_move(self, name: str, tags: tuple[str, ...], digest: Digest) -> None:
        """Refuse (TAG_IMMUTABLE's DENIED) before anything is stored if setting any of
        `tags` to `digest` would move a protected tag. `set` checks again, atomically."""
        if not self.immutability.covers(name):
            return
        for tag in tags:
            rule = self.immutability.rule_for(name, tag)
            if rule is None:
                continue
            try:
                current = await self.resolve(name, tag)
            except ManifestUnknown:
                continue
            if current != digest:
                raise TagImmutable(name, tag, rule, current, f"moved to {digest}")

    def check_remove(self, name: str, tag: str, digest: Digest) -> None:
        """Refuse removing `tag` (naming `digest`) if a rule protects it."""
        rule = self.immutability.rule_for(name, tag)
        if rule is not None:
            raise TagImmutable(name, tag, rule, digest, "deleted")

    async def link(self, name: str, tag: str) -> TagLink:
        try:
            raw = await self._driver.get(layout.tag_current(name, tag))
        except PathNotFound:
            raise ManifestUnknown(f"{name}:{tag}") from None
        return TagLink.decode(raw)

    async def resolve(self, name: str, tag: str) -> Digest:
        return (await self.link(name, tag)).digest

    async def set(self, name: str, tag: str, digest: Digest, generation: str | None = None) -> None:
        """Point `tag` at `digest` (remembering the target it had before in its history)."""
        path = layout.tag_current(name, tag)
        link = TagLink(digest, generation)
        rule = self.immutability.rule_for(name, tag)
        if rule is not None:
            await self._set_immutable(name, tag, link, rule)
            return
        try:
            previous: TagLink | None = TagLink.decode(await self._driver.get(path))
        except PathNotFound:
            previous = None
        if previous == link:
            return
        if previous is not None and previous.digest != digest:
            await self._driver.put(
                layout.tag_history(name, tag, previous.digest), str(previous.digest).encode()
            )
        await self._driver.put(path, link.encode())
        if previous is None or previous.digest != digest:
            await self._events.publish(
                TagMoved(
                    repository=name,
                    tag=tag,
                    digest=digest,
                    previous=previous.digest if previous is not None else None,
                )
            )

    async def _set_immutable(self, name: str, tag: str, link: TagLink, rule: str) -> None:
        """Create the protected tag if absent; else it must already name `link.digest`
        (then only a stale generation is brought up to date)."""
        path = layout.tag_current(name, tag)
        while True:
            try:
                await self._driver.put(path, link.encode(), if_absent=True)
            except AlreadyExists:
                pass
            else:
                await self._events.publish(
                    TagMoved(repository=name, tag=tag, digest=link.digest, previous=None)
                )
                return
            try:
                previous = TagLink.decode(await self._driver.get(path))
            except PathNotFound:
                continue  # removed between the two calls (before the rule existed)
            if previous.digest != link.digest:
                raise TagImmutable(name, tag, rule, previous.digest, f"moved to {link.digest}")
            if previous != link:
                await self._driver.put(path, link.encode())
            return

    async def untag(self, name: str, tag: str, expected: TagLink) -> bool:
        """Remove `tag` only if it still is `expected`; whether it was removed.

        A push that moved the tag meanwhile wins: its pointer is never deleted (its
        history may be: history is a record, not a reference). A protected tag is
        refused (TagImmutable).
        """
        self.check_remove(name, tag, expected.digest)
        # History before and after the pointer: a kill between the steps leaves a tag
        # that still resolves, or (only if a push raced) history without a pointer.
        await self._clear_history(name, tag)
        if not await self._driver.delete_if(layout.tag_current(name, tag), expected.encode()):
            return False
        await self._clear_history(name, tag)
        await self._events.publish(TagDeleted(repository=name, tag=tag, digest=expected.digest))
        return True

    async def delete(self, name: str, tag: str) -> Digest:
        """Remove `tag` whatever it points at; the digest it pointed at when removed."""
        for _ in range(_DELETE_ATTEMPTS):
            try:
                link = await self.link(name, tag)
            except ManifestUnknown:
                # Nothing to delete; history left by a crash between the pointer's
                # removal and the history's goes now, so no tag is ever stuck.
                await self._clear_history(name, tag)
                raise
            if await self.untag(name, tag, link):
                return link.digest
        raise ManifestUnknown(f"{name}:{tag}")  # moved on every attempt: as good as gone

    async def page(self, name: str, limit: int, last: str | None) -> TagPage:
        """Up to `limit` tags after `last`, lexically; NAME_UNKNOWN for a missing repo."""
        names = await self._driver.list_page(layout.tags(name), last, limit + 1)
        if len(names) > limit:
            return TagPage(names[:limit], more=True)
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

    async def links_to(self, name: str, digest: Digest) -> list[tuple[str, TagLink]]:
        """Every tag whose current target is `digest`, with its link (a scan: deletes
        are rare)."""
        found = []
        async for tag in self._driver.list(layout.tags(name)):
            try:
                link = await self.link(name, tag)
            except ManifestUnknown:
                continue
            if link.digest == digest:
                found.append((tag, link))
        return found

    async def pointing_at(self, name: str, digest: Digest) -> list[str]:
        """Every tag whose current target is `digest`."""
        return [tag for tag, _ in await self.links_to(name, digest)]

    async def _clear_history(self, name: str, tag: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.tag_index(name, tag))


async def repository_exists(driver: Driver, name: str) -> bool:
    async for child in driver.list(layout.repository(name)):
        if child in (layout.MANIFESTS_DIR, layout.LAYERS_DIR):
            return True
    return False
