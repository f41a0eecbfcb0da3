"""What every HTTP request leaves behind: a request id, metrics, one access log line.

`Observe` is the outermost ASGI layer (create_app puts it outside starlette's error
middleware, so even an unexpected 500 is counted, logged and carries its id):

- the request id is the client's `X-Request-ID` when it is a sane token (up to 128
  characters of `[A-Za-z0-9._:+=/-]`), else a new one; it is answered in `X-Request-ID`,
  kept in `scope["state"]["request_id"]` and on every log record of the request;
- metrics (arca/metrics.py) by method, route template and status: the route template
  (`/v2/{name:path}/blobs/{digest}`), never the raw path; `unmatched` when no route
  matched; body bytes received and sent; requests and uploads in flight;
- one `arca.access` line per request: method, path, route, repository, status, bytes
  in and out, duration, request id, client address, and the user when an authenticated
  principal's name is in `scope["state"]["user"]`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arca import log as arca_log
from arca import metrics
from arca.api.streaming import ZERO_COPY

access = logging.getLogger("arca.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
_HEADER = b"x-request-id"
UNMATCHED = "unmatched"
# Routes whose request bodies are blob data being uploaded.
_UPLOAD_ROUTES = frozenset(
    {
        "/v2/{name:path}/blobs/uploads/",
        "/v2/{name:path}/blobs/uploads",
        "/v2/{name:path}/blobs/uploads/{session_id}",
    }
)
_UPLOAD_METHODS = frozenset({"POST", "PATCH", "PUT"})


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method: str = scope["method"]
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = arca_log.request_id.set(request_id)
        facts = {"status": 500, "bytes_in": 0, "bytes_out": 0}
        uploading = False

        async def receive_counted() -> Message:
            nonlocal uploading
            message = await receive()
            # Routing happened before the handler's first read: the route is known.
            if not uploading and method in _UPLOAD_METHODS and _is_upload(scope):
                uploading = True
                metrics.UPLOADS_IN_FLIGHT.inc()
            if message["type"] == "http.request":
                facts["bytes_in"] += len(message.get("body", b""))
            return message

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (_HEADER, request_id.encode()),
                ]
            elif message["type"] == "http.response.body" and method != "HEAD":
                facts["bytes_out"] += len(message.get("body", b""))
            elif message["type"] == ZERO_COPY and method != "HEAD":
                facts["bytes_out"] += message["count"]
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive_counted, send_observed)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            if uploading:
                metrics.UPLOADS_IN_FLIGHT.dec()
            duration = time.perf_counter() - start
            route = route_template(scope)
            _record(method, route, facts, duration)
            if access.isEnabledFor(logging.INFO):
                _access_line(scope, method, route, facts, duration, request_id)
            arca_log.request_id.reset(token)


def _is_upload(scope: Scope) -> bool:
    return route_template(scope) in _UPLOAD_ROUTES


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _HEADER:
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else None
    return None


def _record(method: str, route: str, facts: dict[str, int], duration: float) -> None:
    metrics.HTTP_REQUESTS.labels(method, route, str(facts["status"])).inc()
    metrics.HTTP_DURATION.labels(method, route).observe(duration)
    if facts["bytes_in"]:
        metrics.HTTP_RECEIVED.labels(method, route).inc(facts["bytes_in"])
    if facts["bytes_out"]:
        metrics.HTTP_SENT.labels(method, route).inc(facts["bytes_out"])


def _access_line(
    scope: Scope, method: str, route: str, facts: dict[str, int], duration: float, request_id: str
) -> None:
    path = scope.get("path", "")
    if scope.get("query_string"):
        path += "?" + scope["query_string"].decode("latin-1")
    extra: dict[str, Any] = {"method": method, "path": path, "route": route}
    name = scope.get("path_params", {}).get("name")
    if name is not None:
        extra["repository"] = name
    extra.update(facts)
    extra["duration_ms"] = round(duration * 1000, 2)
    extra["request_id"] = request_id
    client = scope.get("client")
    if client:
        extra["client"] = client[0]
    user = scope.get("state", {}).get("user")
    if user is not None:
        extra["user"] = str(user)
    access.info("%s %s %s", method, path, facts["status"], extra=extra)


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`: Prometheus text format; every worker's figures summed."""
    # With several workers, a scrape reads one file per worker and metric: off the loop.
    body = await asyncio.to_thread(metrics.scrape)
    return Response(body, media_type=metrics.CONTENT_TYPE)
