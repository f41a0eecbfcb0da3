"""Two replicas labelling one artifact at once, on a backend without a lock (S3): the
index ends with both changes, whichever replica's refold is written last."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from arca.config import Settings
from arca.control.artifacts import ArtifactControl
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.doubles import WrappingDriver
from tests.lifecycle.retention_helpers import push_run

pytestmark = pytest.mark.anyio


class Pausing(WrappingDriver):
    """Holds the `skip + 1`-th put of a path `match` accepts until `release` is set."""

    def __init__(self, inner: MemoryDriver, match: Callable[[str], bool], skip: int) -> None:
        super().__init__(inner)
        self.match, self.skip = match, skip
        self.held, self.release = asyncio.Event(), asyncio.Event()

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        if not self.held.is_set() and self.match(path):
            if self.skip:
                self.skip -= 1
            else:
                self.held.set()
                await self.release.wait()
        await super().put(path, data, if_absent=if_absent)


async def test_a_replica_writing_a_stale_refold_last_does_not_lose_the_others_change() -> None:
    storage = MemoryDriver()  # no lock across replicas, as on S3
    first = ArtifactControl.attach(Registry(storage, Settings()))
    digest = await push_run(first._registry, "ci/app", "run-1", minute=0, labels={"s": "x"})
    # Replica A's last refold (its second: the index follower's, then the label call's)
    # has read the label artifacts and is about to write the entry...
    entry_path = layout.index_digest("ci/app", digest)
    paused = Pausing(storage, lambda path: path == entry_path, skip=1)
    a = ArtifactControl.attach(Registry(paused, Settings()))
    b = ArtifactControl.attach(Registry(storage, Settings()))
    labelling = asyncio.create_task(a.label("ci/app", "run-1", {"a": "1"}))
    await asyncio.wait_for(paused.held.wait(), 30)
    # ...when replica B labels the same artifact, start to end.
    await b.label("ci/app", "run-1", {"b": "2"})
    paused.release.set()
    await asyncio.wait_for(labelling, 30)

    entry = await b.index.entry("ci/app", digest)
    assert entry is not None
    assert dict(entry.labels) == {"s": "x", "a": "1", "b": "2"}
    for label, value in (("a", "1"), ("b", "2")):
        page = await b.index.page("ci/app", {label: value}, 10, None)
        assert [e.digest for e in page.entries] == [digest]
