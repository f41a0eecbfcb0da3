"""The one wiring: `build_services` (settings + driver -> services) and `create_app`.

The server and every offline command (`arca index rebuild`, later gc, retention, scrub)
build their services with `build_services`, so a subscriber wired here (the artifact
index, the event log) follows every change, whoever makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from arca import metrics
from arca.api.auth import AUTH_ROUTES
from arca.api.control.routes import CONTROL_ROUTES
from arca.api.observe import Observe, metrics_endpoint
from arca.api.rendering import EXCEPTION_HANDLERS, ApiVersionHeader
from arca.api.routes import V2_ROUTES
from arca.auth.audit import publish_auth_events
from arca.auth.service import AuthService
from arca.config import Settings
from arca.control.artifacts import ArtifactControl
from arca.events.log import EventLog, maintain_forever
from arca.events.webhooks import Webhooks
from arca.lifecycle.gc import collect_forever
from arca.lifecycle.retention import retain_forever
from arca.lifecycle.trash import DeletedTags
from arca.registry.registry import Registry
from arca.storage.checked import checked
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


@dataclass(frozen=True)
class Services:
    """Everything a server or an offline command works through, over one driver."""

    settings: Settings
    driver: Driver
    """The checked driver (storage/checked.py) every service shares."""
    registry: Registry
    control: ArtifactControl
    events: EventLog | None
    webhooks: Webhooks

    async def close(self) -> None:
        if self.events is not None:
            await self.events.close()
        await self.driver.close()


def build_services(settings: Settings, driver: Driver | None = None) -> Services:
    """Services from settings, over `driver` (default: the configured one).

    Whatever driver is given goes behind the checking wrapper. Raises ConfigError-like
    ValueErrors (storage/options.py) when the configured driver cannot be built."""
    if driver is None:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
    driver = checked(driver)
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
    return Services(settings, driver, registry, control, events, webhooks)


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """`build_services` for an offline command: the log and the driver are closed at the end."""
    services = build_services(settings)
    try:
        yield services
    finally:
        await services.close()


class _Arca(Starlette):
    """Starlette with `Observe` outside everything, its error middleware included, so
    an unexpected 500 is counted, logged and carries its request id like any answer."""

    def build_middleware_stack(self) -> ASGIApp:
        return Observe(super().build_middleware_stack())


def create_app(settings: Settings | None = None, driver: Driver | None = None) -> Starlette:
    settings = settings or Settings()
    services = build_services(settings, driver)
    registry, control, events, webhooks = (
        services.registry, services.control, services.events, services.webhooks
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = []
        if settings.limits.upload_purge_interval_seconds > 0:
            tasks.append(asyncio.create_task(_purge_uploads(registry, settings)))
        if settings.gc.interval_seconds > 0:
            tasks.append(asyncio.create_task(collect_forever(registry, settings)))
        if settings.retention.interval_seconds > 0 and settings.retention.policies:
            tasks.append(asyncio.create_task(retain_forever(registry, control.index, settings)))
        if events is not None:
            await webhooks.start()
            tasks.append(asyncio.create_task(webhooks.run()))
            tasks.append(
                asyncio.create_task(maintain_forever(events, services.driver, settings.events))
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.close()
            metrics.worker_exited()

    routes = [
        *V2_ROUTES,
        *CONTROL_ROUTES,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *(AUTH_ROUTES if settings.auth.enabled else []),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = _Arca(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(ApiVersionHeader)],
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.services = services
    app.state.registry = registry
    app.state.control = control
    app.state.events = events
    app.state.webhooks = webhooks
    app.state.settings = settings
    app.state.public_url = settings.server.public_url.rstrip("/")
    app.state.read_only = settings.server.read_only
    app.state.auth = AuthService(settings, services.driver) if settings.auth.enabled else None
    if app.state.auth is not None:
        publish_auth_events(app.state.auth, registry.events)  # logins and refusals
    return app


def create_app_from_environment() -> Starlette:
    """uvicorn's factory: settings from ARCA_CONFIG and ARCA_* (set by `arca serve`)."""
    import os

    from arca.config import load_settings

    return create_app(load_settings(os.environ))
