"""Referrers: for each subject digest, the descriptors of manifests that name it.

An entry is written when a manifest with `subject` is pushed, whether or not the
subject exists yet (the spec allows either order), and removed with the manifest.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from arca.formats.digest import Digest
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound


class ReferrerStore:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def add(self, name: str, subject: Digest, descriptor: Mapping[str, Any]) -> None:
        referrer = Digest.parse(descriptor["digest"])
        data = json.dumps(descriptor, separators=(",", ":"), sort_keys=True).encode()
        await self._driver.put(layout.referrer_entry(name, subject, referrer), data)

    async def remove(self, name: str, subject: Digest, referrer: Digest) -> None:
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.referrer_entry(name, subject, referrer))

    async def entries(self, name: str) -> AsyncIterator[tuple[Digest, Digest]]:
        """Every (subject, referrer) recorded in repository `name`."""
        async for info in self._driver.walk(layout.referrers_root(name)):
            parsed = layout.parse_referrer_entry(name, info.path)
            if parsed is not None:
                yield parsed

    async def page(
        self, name: str, subject: Digest, artifact_type: str | None, limit: int, last: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Descriptors after entry `last`, filtered; and the cursor of the next page."""
        descriptors: list[dict[str, Any]] = []
        if limit == 0:
            return descriptors, None
        async for entry in self._driver.list(layout.referrers(name, subject), start_after=last):
            try:
                raw = await self._driver.get(layout.referrer_entry_named(name, subject, entry))
            except PathNotFound:
                continue  # deleted while we listed
            descriptor = json.loads(raw)
            if artifact_type is not None and descriptor.get("artifactType") != artifact_type:
                continue
            descriptors.append(descriptor)
            if len(descriptors) == limit:
                return descriptors, entry
        return descriptors, None
