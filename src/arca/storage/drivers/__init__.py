"""Drivers by short name; each is imported only when chosen, so `s3` needs
aiobotocore, `gcs` gcloud-aio-storage and `azure` azure-storage-blob only where used.

A driver is one line in DRIVERS: its name (also its `[storage.<name>]` table and, when
it needs more than the core dependencies, the name of the `arca[<name>]` extra) mapped
to `"module:Class"`. The class names its options type (`Driver.options_type`, a frozen
dataclass, see storage/options.py); `load_driver` parses the table into it, builds the
driver with `Driver.from_options` and wraps it in the one checking wrapper.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from arca.storage.checked import CheckedDriver
from arca.storage.driver import Driver
from arca.storage.options import DriverOptions, DriverUnavailable, OptionError, parse_options

DRIVERS = {
    "memory": "arca.storage.drivers.memory:MemoryDriver",
    "filesystem": "arca.storage.drivers.filesystem:FilesystemDriver",
    "s3": "arca.storage.drivers.s3:S3Driver",
    "gcs": "arca.storage.drivers.gcs:GCSDriver",
    "azure": "arca.storage.drivers.azure:AzureBlobDriver",
}


def driver_class(name: str) -> type[Driver]:
    """The class of driver `name`; DriverUnavailable if unknown or not installed."""
    try:
        target = DRIVERS[name]
    except KeyError:
        raise DriverUnavailable(
            f"storage.driver {name!r} is not a driver; known: {', '.join(DRIVERS)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        missing = error.name or "a dependency"
        raise DriverUnavailable(
            f"storage.driver {name!r} needs {missing}, which is not installed:"
            f" install arca[{name}] (pip install 'arca[{name}]')"
        ) from error
    cls: type[Driver] = getattr(module, class_name)
    return cls


def driver_options(name: str, raw: Mapping[str, Any]) -> DriverOptions:
    """The `[storage.<name>]` table parsed into the driver's options (OptionError)."""
    return parse_options(driver_class(name).options_type, raw, f"storage.{name}")


def load_driver(name: str, raw: Mapping[str, Any]) -> CheckedDriver:
    """Driver `name` built from its raw options, behind the checking wrapper.

    Raises DriverUnavailable or OptionError (both ValueError) with a one-line message
    naming the option, also when the backend refuses to be set up (a root that is a file).
    """
    cls = driver_class(name)
    options = parse_options(cls.options_type, raw, f"storage.{name}")
    try:
        driver = cls.from_options(options)
    except OptionError as error:
        key = error.key if error.key.startswith("storage.") else f"storage.{name}.{error.key}"
        raise OptionError(key, error.message) from None
    return CheckedDriver(driver)
