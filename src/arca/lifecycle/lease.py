"""A lease in storage: one holder at a time across every process and replica.

The lease is a sequence of create-only objects `<prefix>/<epoch>`; whoever created
the highest epoch holds it until the expiry written inside. Taking over an expired
lease creates the next epoch with `if_absent`, so of two replicas racing for it
exactly one wins, on every driver (no compare-and-swap needed). Renewing rewrites
the holder's own epoch object, after checking it is still the highest.

A holder that stalls past its expiry (a long GC pause, a frozen VM) may act for a
moment after another took over: holders check `held()` before each destructive step
and renew well before expiry (every third of the lease), which keeps that window to
a stall longer than two thirds of the lease. docs/gc.md says what the collector does
to survive even that.
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

from arca.storage.driver import AlreadyExists, Driver, PathNotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Holder:
    owner: str
    expires: float


class LeaseLost(Exception):
    """Another holder took the lease over (ours expired)."""


class Lease:
    def __init__(
        self,
        driver: Driver,
        prefix: str,
        path_of: Callable[[int], str],
        seconds: float,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._driver = driver
        self._prefix = prefix
        self._path_of = path_of
        self.seconds = seconds
        self.owner = owner or uuid.uuid4().hex
        self._clock = clock
        self._epoch: int | None = None
        self._expires = 0.0

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired; False if someone else holds it."""
        epochs = [int(name) async for name in self._driver.list(self._prefix) if name.isdigit()]
        latest = max(epochs, default=0)
        holder = await self._read(latest) if latest else None
        if holder is not None and holder.owner != self.owner and holder.expires > self._clock():
            return False
        try:
            await self._write(latest + 1, if_absent=True)
        except AlreadyExists:
            return False
        self._epoch = latest + 1
        for epoch in epochs:  # older epochs are history now (the highest stays)
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(self._path_of(epoch))
        return True

    async def renew(self) -> None:
        """Extend the lease; LeaseLost if a newer epoch exists (ours had expired)."""
        if self._epoch is None:
            raise LeaseLost("the lease is not held")
        epochs = [int(name) async for name in self._driver.list(self._prefix) if name.isdigit()]
        if max(epochs, default=0) != self._epoch:
            self._epoch = None
            raise LeaseLost("another collector took the lease over")
        await self._write(self._epoch, if_absent=False)

    def held(self, margin: float = 0.0) -> bool:
        """Whether our lease is unexpired for at least `margin` more seconds (by our clock)."""
        return self._epoch is not None and self._clock() + margin < self._expires

    async def release(self) -> None:
        """Mark our epoch expired (epochs are never reused, so a stalled former holder
        can never mistake a later lease for its own)."""
        if self._epoch is not None:
            with contextlib.suppress(LeaseLost):
                await self.renew_until(0.0)
        self._epoch = None

    async def renew_until(self, expires: float) -> None:
        if self._epoch is None:
            raise LeaseLost("the lease is not held")
        epochs = [int(name) async for name in self._driver.list(self._prefix) if name.isdigit()]
        if max(epochs, default=0) != self._epoch:
            raise LeaseLost("another collector took the lease over")
        record = {"owner": self.owner, "expires": expires}
        await self._driver.put(self._path_of(self._epoch), json.dumps(record).encode())
        self._expires = expires

    @contextlib.asynccontextmanager
    async def keep_renewed(self) -> AsyncIterator[None]:
        """Renew every third of the lease while the body runs; release at the end."""

        async def renew_forever() -> None:
            while True:
                await asyncio.sleep(self.seconds / 3)
                try:
                    await self.renew()
                except LeaseLost:
                    log.warning("collector lease lost", extra={"owner": self.owner})
                    return
                except Exception:
                    log.exception("collector lease renewal failed")

        task = asyncio.create_task(renew_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.release()

    async def _read(self, epoch: int) -> _Holder | None:
        try:
            record = json.loads(await self._driver.get(self._path_of(epoch)))
        except PathNotFound:
            return None
        return _Holder(str(record["owner"]), float(record["expires"]))

    async def _write(self, epoch: int, *, if_absent: bool) -> None:
        expires = self._clock() + self.seconds
        record = {"owner": self.owner, "expires": expires}
        await self._driver.put(
            self._path_of(epoch), json.dumps(record).encode(), if_absent=if_absent
        )
        self._expires = expires
