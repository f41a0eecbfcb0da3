"""Drivers by short name; each is imported only when chosen, so `s3` needs
aiobotocore only where it is used."""

from __future__ import annotations

import importlib
from typing import Any

from arca.storage.driver import Driver

DRIVERS = {
    "memory": "arca.storage.drivers.memory:MemoryDriver",
    "filesystem": "arca.storage.drivers.filesystem:FilesystemDriver",
    "s3": "arca.storage.drivers.s3:S3Driver",
}


def load_driver(name: str, options: dict[str, Any]) -> Driver:
    try:
        target = DRIVERS[name]
    except KeyError:
        raise ValueError(f"unknown storage driver {name!r}; known: {sorted(DRIVERS)}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    driver: Driver = cls(**options)
    return driver
