"""create_app: the one place that wires settings, driver, services and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from arca.api.auth import AUTH_ROUTES
from arca.api.control.routes import CONTROL_ROUTES
from arca.api.rendering import EXCEPTION_HANDLERS, ApiVersionHeader
from arca.api.routes import V2_ROUTES
from arca.auth.service import AuthService
from arca.config import Settings
from arca.control.artifacts import ArtifactControl
from arca.events.log import EventLog, maintain_forever
from arca.events.webhooks import Webhooks
from arca.lifecycle.gc import collect_forever
from arca.lifecycle.trash import DeletedTags
from arca.registry.registry import Registry
from arca.storage.driver import BackendUnavailable, Driver
from arca.storage.drivers import load_driver

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: storage answers too, so a load balancer skips a cut-off replica."""
    registry: Registry = request.app.state.registry
    try:
        await registry.driver.check()
    except BackendUnavailable as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})


async def _purge_uploads(registry: Registry, settings: Settings) -> None:
    """Delete abandoned upload sessions now and then (every replica may; it is idempotent)."""
    limits = settings.limits
    while True:
        await asyncio.sleep(limits.upload_purge_interval_seconds)
        try:
            purged = await registry.uploads.purge_expired(limits.upload_expiry_seconds)
        except Exception:
            log.exception("upload purge failed")
            continue
        if purged:
            log.info("purged abandoned uploads", extra={"count": len(purged)})


def create_app(settings: Settings | None = None, driver: Driver | None = None) -> Starlette:
    settings = settings or Settings()
    if driver is None:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
    registry = Registry(driver, settings)
    events = EventLog(driver, settings.events.source) if settings.events.enabled else None
    registry.events.record = events  # every change is durable in the log before its answer
    control = ArtifactControl.attach(registry)  # the artifact index follows every push
    registry.events.followers.append(DeletedTags(driver))  # restore brings tags back
    webhooks = Webhooks(
        driver,
        events,
        settings.events.webhooks,
        settings.events.stream_poll_seconds,
        settings.events.lease_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = []
        if settings.limits.upload_purge_interval_seconds > 0:
            tasks.append(asyncio.create_task(_purge_uploads(registry, settings)))
        if settings.gc.interval_seconds > 0:
            tasks.append(asyncio.create_task(collect_forever(registry, settings)))
        if events is not None:
            await webhooks.start()
            tasks.append(asyncio.create_task(webhooks.run()))
            tasks.append(asyncio.create_task(maintain_forever(events, driver, settings.events)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if events is not None:
                await events.close()
            await driver.close()

    routes = [
        *V2_ROUTES,
        *CONTROL_ROUTES,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *(AUTH_ROUTES if settings.auth.enabled else []),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(ApiVersionHeader)],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.registry = registry
    app.state.control = control
    app.state.events = events
    app.state.webhooks = webhooks
    app.state.settings = settings
    app.state.public_url = settings.server.public_url.rstrip("/")
    app.state.read_only = settings.server.read_only
    app.state.auth = AuthService(settings, driver) if settings.auth.enabled else None
    return app


def create_app_from_environment() -> Starlette:
    """uvicorn's factory: settings from ARCA_CONFIG and ARCA_* (set by `arca serve`)."""
    import os

    from arca.config import load_settings

    return create_app(load_settings(os.environ))
