"""The one lease (arca.storage.lease): one holder at a time across processes sharing
storage, taken over after expiry, never regained by a holder that stalled."""

from __future__ import annotations

import asyncio

import pytest

from arca.storage.drivers.memory import MemoryDriver
from arca.storage.lease import Lease

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_one_holder_then_a_takeover_after_expiry_and_the_stalled_one_stays_out() -> None:
    driver, clock = MemoryDriver(), Clock()
    first = Lease(driver, "gc", ttl=60, clock=clock)
    second = Lease(driver, "gc", ttl=60, clock=clock)
    assert await first.acquire()
    assert first.held
    assert not await second.acquire()
    holder = await second.holder()
    assert holder is not None
    assert holder.owner == first.owner

    clock.now += 50  # within the term, but less than the margin left
    assert not first.held
    clock.now += 11  # expired: the other takes over
    assert await second.acquire()
    assert not await first.acquire()  # the stalled holder cannot renew its way back
    assert not first.held
    assert second.held


async def test_racing_acquirers_exactly_one_wins() -> None:
    driver = MemoryDriver()
    leases = [Lease(driver, "gc", ttl=60) for _ in range(8)]
    won = await asyncio.gather(*(lease.acquire() for lease in leases))
    assert sum(won) == 1


async def test_keep_renewed_outlives_the_term_and_releases_at_the_end() -> None:
    driver = MemoryDriver()
    lease = Lease(driver, "gc", ttl=2)
    other = Lease(driver, "gc", ttl=2)
    assert await lease.acquire()
    async with lease.keep_renewed():
        await asyncio.sleep(2.5)  # longer than the term: only renewals keep it
        assert not await other.acquire()
        assert lease.held
    assert await other.acquire()  # released: no need to wait for the term to end
