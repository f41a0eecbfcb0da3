"""The push side of online garbage collection: re-using an object protects it.

A push relies on objects it did not write in this request: a blob a HEAD said
exists, a mounted blob, a blob an upload deduplicated into, the layers and children
a manifest names. Every such re-use is a *claim* here, and a claim answers True only
if the object exists and no collector run that is sweeping now will remove it. The
collector's half is `arca.lifecycle.gc`; the argument that the two halves never
lose a claimed object is in docs/gc.md. In short:

1. *touch*: when the object's last write is older than half the grace period,
   write it again (links and revisions are rewritten with the same bytes, a blob's
   `meta` stands for its data), so a collector's re-check sees it fresh;
2. then look for `gc/sweeping`: absent, no collector holds tombstones, so any
   collector that starts later re-checks after our touch and keeps the object;
3. present: a tombstone (`mark`) on the object means a collector may be about to
   remove it. Both sides then create the object's `verdict` create-only; the first
   wins. "rescued" keeps the object; "doomed" means it goes to the trash, so we wait
   until the collector removed the tombstone and answer from what storage holds.

Storage is the only arbiter (create-only writes, read-after-write), so this holds
across processes and replicas with no lock and no database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

log = logging.getLogger(__name__)

RESCUED = b"rescued"
DOOMED = b"doomed"
_POLL_SECONDS = 0.05
_ABSENT, _FRESH, _TOUCHED = "absent", "fresh", "touched"


@dataclass(frozen=True, slots=True)
class Claim:
    """One object a request relies on.

    `path` is the object a collector would remove (a link, a revision, blob data);
    `touch` rewrites it (or what stands for it) so it counts as freshly used; the
    claim holds only if `path` and every path in `requires` exist at the end.
    """

    path: str
    touch: Callable[[], Awaitable[None]] | None = None
    requires: tuple[str, ...] = field(default=())


class Reuse:
    def __init__(
        self,
        driver: Driver,
        grace_seconds: float,
        wait_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._driver = driver
        self._fresh_for = grace_seconds / 2
        self._wait = wait_seconds
        self._clock = clock

    async def claim(self, claims: Sequence[Claim]) -> list[bool]:
        """For each claim, whether its object exists and stays (steps 1-3 above)."""
        touched = await asyncio.gather(*(self._touch(claim) for claim in claims))
        if not await self._driver.exists(layout.gc_sweeping()):
            # No collector holds tombstones. An object we touched may have been
            # removed by a run that finished between our stat and our touch: check.
            return list(
                await asyncio.gather(
                    *(
                        self._present(claim) if state == _TOUCHED else _constant(state == _FRESH)
                        for claim, state in zip(claims, touched, strict=True)
                    )
                )
            )
        return list(await asyncio.gather(*(self._arbitrate(claim) for claim in claims)))

    async def written(self, path: str, data: bytes) -> None:
        """After writing `path` afresh: if a collector tombstoned an older object at
        the same path, make sure the collector does not remove what we wrote."""
        if not await self._driver.exists(layout.gc_sweeping()):
            return

        async def rewrite() -> None:
            await self._driver.put(path, data)

        if not await self._arbitrate(Claim(path, rewrite)):
            await rewrite()  # the collector removed it: write it back

    async def _touch(self, claim: Claim) -> str:
        """Rewrite the object unless it is fresh enough; absent, fresh or touched."""
        try:
            info = await self._driver.stat(claim.path)
        except PathNotFound:
            return _ABSENT
        if info.modified >= self._clock() - self._fresh_for or claim.touch is None:
            return _FRESH
        await claim.touch()
        return _TOUCHED

    async def _arbitrate(self, claim: Claim) -> bool:
        mark = layout.gc_tombstone_mark(claim.path)
        if await self._driver.exists(mark):
            verdict = layout.gc_tombstone_verdict(claim.path)
            try:
                await self._driver.put(verdict, RESCUED, if_absent=True)
            except AlreadyExists:
                decided = b""
                with contextlib.suppress(PathNotFound):
                    decided = await self._driver.get(verdict)
                if decided == DOOMED:
                    log.info("claim lost to a collector", extra={"path": claim.path})
                    if not await self._until_gone(mark) and claim.touch is not None:
                        # The collector died after its verdict: writing the object
                        # after the verdict makes the next collector keep it.
                        await claim.touch()
            except PathNotFound:
                pass  # the collector removed the tombstone meanwhile
        return await self._present(claim)

    async def _until_gone(self, mark: str) -> bool:
        """A doomed object is moved to the trash and its tombstone removed within
        moments; if the collector died half way, give up after `wait_seconds` (the
        next collector finishes or keeps it, docs/gc.md)."""
        deadline = self._clock() + self._wait
        while await self._driver.exists(mark):
            if self._clock() >= deadline:
                return False
            await asyncio.sleep(_POLL_SECONDS)
        return True

    async def _present(self, claim: Claim) -> bool:
        found = await asyncio.gather(
            *(self._driver.exists(path) for path in (claim.path, *claim.requires))
        )
        return all(found)


async def _constant(value: bool) -> bool:
    return value
