"""A lease in storage: at most one holder at a time among every process sharing it.

Built on the driver's create-only write alone, so it works on every backend (S3 has
no locks, and the driver contract has no compare-and-swap). A lease is a sequence
of generation objects (`layout.lease_generation`); to take or renew the lease, a
process writes generation `g + 1` create-only, where `g` is the newest it found.
Exactly one writer wins each generation, so two processes never both believe they
took the same generation. A holder renews before its term ends; anyone may take a
lease whose newest generation has expired or was released.

Expiry is judged on each process's own clock: a lease assumes clocks agree to well
within its `ttl`, and a holder stops acting `margin` seconds before its term ends.
Renewal is a new generation, create-only like the first: a holder that stalled past
its term and wakes up cannot overwrite the term of whoever took over (it loses the
create, or finds a newer term it does not own). The one lease of the project: webhook
delivery, event log maintenance and garbage collection (`keep_renewed` around a run)
use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The lease ran out or another process took it over: stop acting."""


@dataclass(frozen=True, slots=True)
class LeaseTerm:
    owner: str
    expires: float
    released: bool = False


class Lease:
    def __init__(
        self,
        driver: Driver,
        name: str,
        ttl: float = 30.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._driver = driver
        self.name = name
        self.ttl = ttl
        self.margin = ttl / 4
        self.owner = owner or uuid.uuid4().hex
        self._clock = clock
        self._expires = 0.0
        self._generation = 0

    @property
    def held(self) -> bool:
        """True while this process holds the lease with `margin` to spare."""
        return self._clock() < self._expires - self.margin

    @property
    def due(self) -> bool:
        """True when half the term has passed: time to renew."""
        return self._clock() > self._expires - self.ttl / 2

    async def acquire(self) -> bool:
        """Take the lease, or renew it if held; True when held afterwards."""
        generation, term = await self._newest()
        now = self._clock()
        taken = term is not None and term.owner != self.owner and not term.released
        if taken and term is not None and term.expires > now:
            self._expires = 0.0
            return False
        expires = now + self.ttl
        record = json.dumps({"owner": self.owner, "expires": expires}).encode()
        try:
            path = layout.lease_generation(self.name, generation + 1)
            await self._driver.put(path, record, if_absent=True)
        except AlreadyExists:
            self._expires = 0.0
            return False
        self._generation, self._expires = generation + 1, expires
        await self._forget_before(generation)
        return True

    async def release(self) -> None:
        """Give the lease up now (at shutdown), so another process need not wait."""
        if not self.held:
            return
        self._expires = 0.0
        record = json.dumps({"owner": self.owner, "expires": 0, "released": True}).encode()
        with contextlib.suppress(AlreadyExists):
            path = layout.lease_generation(self.name, self._generation + 1)
            await self._driver.put(path, record, if_absent=True)

    @contextlib.asynccontextmanager
    async def keep_renewed(self) -> AsyncIterator[None]:
        """Renew every third of the term while the body runs (the lease must be held
        on entry), then release. A renewal that finds the lease taken over stops
        renewing: `held` turns false, and a body that checks it before each
        destructive step stops (raising `LeaseLost`)."""

        async def renew_forever() -> None:
            while True:
                await asyncio.sleep(self.ttl / 3)
                try:
                    if not await self.acquire():
                        log.warning("lease lost", extra={"lease": self.name, "owner": self.owner})
                        return
                except Exception:
                    log.exception("lease renewal failed", extra={"lease": self.name})

        task = asyncio.create_task(renew_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.release()

    async def holder(self) -> LeaseTerm | None:
        """The current term (whoever holds it), or None if nobody does."""
        _, term = await self._newest()
        if term is None or term.released or term.expires <= self._clock():
            return None
        return term

    async def _newest(self) -> tuple[int, LeaseTerm | None]:
        for _ in range(5):
            generations = [
                int(name)
                async for name in self._driver.list(layout.lease(self.name))
                if name.isdigit()
            ]
            if not generations:
                return 0, None
            newest = max(generations)
            try:
                raw = json.loads(await self._driver.get(layout.lease_generation(self.name, newest)))
            except PathNotFound:
                continue  # removed meanwhile by a holder tidying up: list again
            return newest, LeaseTerm(raw["owner"], raw["expires"], raw.get("released", False))
        return 0, None

    async def _forget_before(self, generation: int) -> None:
        """Old generations are history; the holder removes them (never the newest two)."""
        async for name in self._driver.list(layout.lease(self.name)):
            if name.isdigit() and int(name) < generation:
                with contextlib.suppress(PathNotFound):
                    await self._driver.delete(layout.lease_generation(self.name, int(name)))
