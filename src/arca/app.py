"""create_app: the one place that wires settings, driver, services and routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from arca.api.control.routes import CONTROL_ROUTES
from arca.api.rendering import EXCEPTION_HANDLERS, ApiVersionHeader
from arca.api.routes import V2_ROUTES
from arca.config import Settings
from arca.control.artifacts import ArtifactControl
from arca.registry.registry import Registry
from arca.storage.driver import BackendUnavailable, Driver
from arca.storage.drivers import load_driver


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


def create_app(settings: Settings | None = None, driver: Driver | None = None) -> Starlette:
    settings = settings or Settings()
    if driver is None:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
    registry = Registry(driver, settings)
    control = ArtifactControl.attach(registry)  # the artifact index follows every push

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await driver.close()

    routes = [
        *V2_ROUTES,
        *CONTROL_ROUTES,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
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
    app.state.public_url = settings.server.public_url.rstrip("/")
    return app


def create_app_from_environment() -> Starlette:
    """uvicorn's factory: settings from ARCA_CONFIG and ARCA_* (set by `arca serve`)."""
    import os

    from arca.config import load_settings

    return create_app(load_settings(os.environ))
