"""Pins: artifacts no retention rule and no garbage collection may remove.

A pin is one small object in storage (`layout.pin_digest` / `layout.pin_tag`), so it
holds on every replica and survives restarts. A digest pin keeps that manifest; a tag
pin keeps whatever the tag points at, wherever it moves (pin `:stable` once). Pinning
or unpinning publishes `pin.added` / `pin.removed`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from arca.errors import ManifestUnknown, ParameterInvalid
from arca.formats.digest import Digest
from arca.formats.reference import parse_reference
from arca.registry.events import PinAdded, PinRemoved
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound

MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    reference: str
    """A tag, or a digest (`sha256:…`)."""
    reason: str
    actor: str | None
    created: float

    @property
    def digest(self) -> Digest | None:
        return Digest.parse(self.reference) if ":" in self.reference else None

    @property
    def tag(self) -> str | None:
        return None if ":" in self.reference else self.reference

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reference": self.reference,
            "reason": self.reason,
            "actor": self.actor,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Pin:
        return cls(
            name=str(raw["name"]),
            reference=str(raw["reference"]),
            reason=str(raw.get("reason", "")),
            actor=raw.get("actor"),
            created=float(raw["created"]),
        )


class PinUnknown(Exception):
    """Nothing is pinned at this reference."""


def _path(name: str, reference: str) -> str:
    target = parse_reference(reference)
    if isinstance(target, Digest):
        return layout.pin_digest(name, target)
    return layout.pin_tag(name, target)


class Pins:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def add(
        self, registry: Registry, name: str, reference: str, reason: str, actor: str | None
    ) -> Pin:
        """Pin an existing manifest or tag (MANIFEST_UNKNOWN if it is not there)."""
        if len(reason) > MAX_REASON:
            raise ParameterInvalid(
                f"a pin's reason is at most {MAX_REASON} characters", {"reason": len(reason)}
            )
        path = _path(name, reference)  # a malformed reference: ParameterInvalid/TagInvalid
        target = parse_reference(reference)
        reference = str(target)
        await registry.manifests.revision(name, reference)  # ManifestUnknown if absent
        pin = Pin(name, reference, reason, actor, time.time())
        await self._driver.put(path, json.dumps(pin.to_json()).encode())
        await registry.events.publish(
            PinAdded(repository=name, reference=reference, reason=reason, actor=actor)
        )
        return pin

    async def remove(self, registry: Registry, name: str, reference: str, actor: str | None) -> Pin:
        path = _path(name, reference)
        pin = await self._read(path)
        if pin is None:
            raise PinUnknown(f"{name}{'@' if ':' in reference else ':'}{reference}")
        await self._driver.delete(path)
        await registry.events.publish(
            PinRemoved(repository=name, reference=pin.reference, actor=actor)
        )
        return pin

    async def all(self, name: str | None = None) -> AsyncIterator[Pin]:
        """Every pin (of `name` only, when given; not of names nested below it)."""
        prefix = layout.pins() if name is None else layout.pins_of(name)
        async for info in self._driver.walk(prefix):
            pin = await self._read(info.path)
            if pin is not None and (name is None or pin.name == name):
                yield pin

    async def get(self, name: str, reference: str) -> Pin | None:
        """The pin of `name` at `reference` (a tag or a digest), or None: one read."""
        return await self._read(_path(name, reference))

    async def of(self, name: str) -> list[Pin]:
        return [pin async for pin in self.all(name)]

    async def pinned(self, registry: Registry, name: str) -> dict[Digest, Pin]:
        """The manifests of `name` pins keep now: digest pins, and tag pins' targets."""
        kept: dict[Digest, Pin] = {}
        for pin in await self.of(name):
            digest = pin.digest
            if digest is None and pin.tag is not None:
                try:
                    digest = await registry.tags.resolve(name, pin.tag)
                except ManifestUnknown:
                    continue
            if digest is not None:
                kept.setdefault(digest, pin)
        return kept

    async def _read(self, path: str) -> Pin | None:
        try:
            return Pin.from_json(json.loads(await self._driver.get(path)))
        except (PathNotFound, ValueError, KeyError):
            return None
