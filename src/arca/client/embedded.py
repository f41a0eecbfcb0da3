"""The embedded store: arca's artifact API in this process, over a directory or a bucket.

    store = arca.client.open("./data")             # the filesystem driver at ./data
    store = arca.client.open("s3://bucket/prefix", options={"endpoint_url": ...})
    store = arca.client.open(config="arca.toml")   # any driver, as `arca serve` reads it

Each returns an `ArcaClient` (or, from `open_async`, an `AsyncArcaClient`) with every
method of the client, for notebooks, tests and workflow runtimes that want no server.
Behind it is the registry itself: `create_app` over the chosen driver, called through
an in-process transport (`_inprocess.AppTransport`). So pushes are validated, stored,
indexed and listed by exactly the services a server runs, and the store is safe
beside a running server (or several) on the same storage for the same reasons
several replicas are: everything is in storage, writes are atomic, and the
filesystem driver's cross-process locks (upload sessions, the index's tag hints)
hold between this process and the server's workers as between two workers.

What a server does besides answering requests does not run here: abandoned upload
sessions are not purged (a server on the same storage purges them), and blob reads
are never redirected to presigned URLs (`redirect` is turned off for S3). Access
control (`[auth]`) is off in-process: opening the storage already grants everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from arca.client.aio import AsyncArcaClient
from arca.client.errors import UsageError
from arca.client.sync import ArcaClient
from arca.config import ConfigError, Settings, StorageSettings, load_settings

EMBEDDED_URL = "http://arca.embedded"


def open_store(
    location: str | Path | None = None,
    *,
    config: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float = 300.0,
) -> ArcaClient:
    """A blocking client over storage at `location` (a directory, or s3://bucket/prefix),
    or as `config` (a TOML file as `arca serve --config` takes) says. Use `with`."""
    return ArcaClient(
        EMBEDDED_URL, timeout=timeout, transport=_transport(location, config, options)
    )


def open_async(
    location: str | Path | None = None,
    *,
    config: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float = 300.0,
) -> AsyncArcaClient:
    """`open_store` for code that runs an event loop: an `AsyncArcaClient`."""
    return AsyncArcaClient(
        EMBEDDED_URL, timeout=timeout, transport=_transport(location, config, options)
    )


def settings_for(
    location: str | Path | None,
    config: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings the embedded store runs with (the driver chosen by `location`)."""
    if (location is None) == (config is None):
        raise UsageError("open a store at a location (directory or s3://…) or with config=")
    try:
        settings = load_settings({}, config) if config is not None else Settings()
    except ConfigError as error:
        raise UsageError(str(error)) from error
    storage = settings.storage
    if location is not None:
        text = str(location)
        if text.startswith("s3://"):
            bucket, _, prefix = text.removeprefix("s3://").partition("/")
            s3 = {**(options or {}), "bucket": bucket, "prefix": prefix.strip("/")}
            storage = StorageSettings(driver="s3", s3=s3)
        else:
            root = str(Path(text).resolve())
            storage = StorageSettings(
                driver="filesystem", filesystem={**(options or {}), "root": root}
            )
    if storage.driver == "s3":
        storage = dataclasses.replace(storage, s3={**storage.s3, "redirect": False})
    # Whoever opens the store holds the storage itself: checking identities in-process
    # would protect nothing, and there is no one to send credentials.
    auth = dataclasses.replace(settings.auth, enabled=False)
    return dataclasses.replace(settings, storage=storage, auth=auth)


def _transport(
    location: str | Path | None, config: str | Path | None, options: Mapping[str, Any] | None
) -> httpx.AsyncBaseTransport:
    # Imported here: a client talking to a server needs none of the registry.
    from arca.app import create_app
    from arca.client._inprocess import AppTransport

    settings = settings_for(location, config, options)
    try:
        app = create_app(settings)
    except (TypeError, ValueError) as error:  # the driver refused its options
        raise UsageError(f"cannot open the store: {error}") from error
    return AppTransport(app, on_close=app.state.registry.driver.close)
