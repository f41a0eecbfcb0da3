"""Errors rendered as the spec's JSON body, and the headers every /v2 answer carries."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arca.errors import ErrorCode, RegistryError, Unavailable, Unsupported
from arca.storage.driver import BackendUnavailable, InvalidPath

log = logging.getLogger(__name__)

API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")


def render(error: RegistryError) -> Response:
    return JSONResponse(error.to_json(), status_code=error.status, headers=error.headers)


async def registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return render(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the spec's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error = Unsupported(f"method {request.method} is not supported on {request.url.path}")
        return JSONResponse(error.to_json(), status_code=405, headers=exc.headers)
    # No route: plain text, since a JSON 4xx body must use one of the spec's codes
    # and none of them means "no such endpoint".
    return PlainTextResponse(f"{exc.status_code} {exc.detail}", exc.status_code, exc.headers)


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    log.error("storage unavailable", extra={"path": request.url.path, "error": str(exc)})
    return render(Unavailable(f"storage backend unavailable: {exc}"))


async def invalid_path(request: Request, exc: Exception) -> Response:
    # Only reachable if a value slipped past the name/tag/digest grammar.
    return JSONResponse(
        {"errors": [{"code": ErrorCode.NAME_INVALID.name, "message": str(exc)}]},
        status_code=400,
    )


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client went away mid-body: ordinary, not an error. What was received and
    made durable stays in its upload session; the answer reaches no one (uvicorn drops
    it), so 499 is only what a log of the exchange would show, as nginx names it."""
    log.info("client disconnected", extra={"method": request.method, "path": request.url.path})
    return Response(status_code=499)


async def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    body = {"errors": [{"code": ErrorCode.UNKNOWN.name, "message": ErrorCode.UNKNOWN.message}]}
    return JSONResponse(body, status_code=500)


EXCEPTION_HANDLERS = {
    RegistryError: registry_error,
    HTTPException: http_error,
    BackendUnavailable: storage_unavailable,
    InvalidPath: invalid_path,
    ClientDisconnect: client_disconnected,
    Exception: unexpected,
}


class ApiVersionHeader:
    """Adds Docker-Distribution-API-Version to every answer (clients probe for it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), API_VERSION]
            await send(message)

        await self.app(scope, receive, send_with_header)
