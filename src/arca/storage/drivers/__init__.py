"""Drivers by short name; each is imported only when chosen, so `s3` needs
aiobotocore, `gcs` gcloud-aio-storage and `azure` azure-storage-blob only where used."""

from __future__ import annotations

import importlib
from typing import Any

from arca.storage.driver import Driver

DRIVERS = {
    "memory": "arca.storage.drivers.memory:MemoryDriver",
    "filesystem": "arca.storage.drivers.filesystem:FilesystemDriver",
    "s3": "arca.storage.drivers.s3:S3Driver",
    "gcs": "arca.storage.drivers.gcs:GCSDriver",
    "azure": "arca.storage.drivers.azure:AzureBlobDriver",
}


def load_driver(name: str, options: dict[str, Any]) -> Driver:
    try:
        target = DRIVERS[name]
    except KeyError:
        raise ValueError(f"unknown storage driver {name!r}; known: {sorted(DRIVERS)}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"storage driver {name!r} needs {exc.name!r}: pip install 'arca[{name}]'"
        ) from exc
    cls = getattr(module, class_name)
    driver: Driver = cls(**options)
    return driver
