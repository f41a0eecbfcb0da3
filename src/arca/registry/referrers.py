"""Referrers: for each subject digest, the descriptors of manifests that name it.

An entry is written when a manifest with `subject` is pushed, whether or not the
subject exists yet (the spec allows either order), and removed with the manifest.
It records the generation of the manifest's revision (see `arca.registry.manifests`)
under a key that is never served, so that a delete racing a push of the same
manifest removes only the entry written for the revision it deleted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from arca.formats.digest import Digest
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound

_GENERATION = "_generation"
"""The key of the generation in an entry (descriptors' own keys never start with `_`)."""


class ReferrerStore:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def add(
        self,
        name: str,
        subject: Digest,
        descriptor: Mapping[str, Any],
        generation: str | None = None,
    ) -> None:
        referrer = Digest.parse(descriptor["digest"])
        record = dict(descriptor)
        if generation is not None:
            record[_GENERATION] = generation
        data = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        await self._driver.put(layout.referrer_entry(name, subject, referrer), data)

    async def remove(
        self, name: str, subject: Digest, referrer: Digest, generation: str | None = None
    ) -> None:
        """Remove the entry, unless it was written for another generation than `generation`."""
        path = layout.referrer_entry(name, subject, referrer)
        try:
            raw = await self._driver.get(path)
        except PathNotFound:
            return
        if json.loads(raw).get(_GENERATION) not in (None, generation):
            return  # a later push of the same manifest wrote it
        await self._driver.delete_if(path, raw)

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
            descriptor.pop(_GENERATION, None)
            if artifact_type is not None and descriptor.get("artifactType") != artifact_type:
                continue
            descriptors.append(descriptor)
            if len(descriptors) == limit:
                return descriptors, entry
        return descriptors, None
