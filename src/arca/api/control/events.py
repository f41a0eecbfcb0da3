"""/api/v1/events: the log in pages, as a Server-Sent Events stream, and webhook state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from arca.api.auth import access, pull_filter
from arca.auth.policy import ADMIN
from arca.errors import ParameterInvalid, Unsupported
from arca.events.log import EventFilter, EventId, EventLog, parse_types
from arca.events.webhooks import Webhooks

DEFAULT_N = 100
MAX_N = 1000
_KEEPALIVE_SECONDS = 15.0
_AUTH_TYPES = "dev.arca.auth."


def _log(request: Request) -> EventLog:
    found: EventLog | None = request.app.state.events
    if found is None:
        raise Unsupported("the event log is off on this registry ([events] enabled = false)")
    return found


def _webhooks(request: Request) -> Webhooks:
    found: Webhooks = request.app.state.webhooks
    return found


async def _visible(request: Request, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events the caller may see (all of them with auth off): those of a
    repository it may pull; registry-wide events (GC, trash, scrub: `repository` "")
    and the access layer's own (`auth.*`: who signed in from where) only for an
    admin on every repository."""
    may_pull = pull_filter(request)
    if may_pull is None:
        return events
    found = access(request)
    admin = found is not None and ADMIN in await found.auth.rights(found.identity, "*")
    allowed: dict[str, bool] = {}
    shown = []
    for event in events:
        name = str((event.get("data") or {}).get("repository") or "")
        if not name or str(event.get("type", "")).startswith(_AUTH_TYPES):
            if admin:
                shown.append(event)
            continue
        if name not in allowed:
            allowed[name] = await may_pull(name)
        if allowed[name]:
            shown.append(event)
    return shown


def _after(value: str | None) -> EventId | None:
    return EventId.parse(value) if value else None


def _n(request: Request) -> int:
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        return DEFAULT_N
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not 1 <= int(raw) <= MAX_N:
        raise ParameterInvalid(
            f"n must be an integer from 1 to {MAX_N}, not {raw[:20]!r}", {"n": raw[:20]}
        )
    return int(raw)


def _filter(request: Request) -> EventFilter:
    types = [t for raw in request.query_params.getlist("type") for t in raw.split(",") if t]
    repositories = [glob for glob in request.query_params.getlist("repository") if glob]
    return EventFilter(parse_types(types), tuple(repositories))


async def page(request: Request) -> Response:
    """GET /api/v1/events?after=&n=&type=&repository=: events in log order."""
    log = _log(request)
    after, n, where = _after(request.query_params.get("after")), _n(request), _filter(request)
    found = await log.page(after, n, where)
    headers = {}
    if found.more and found.cursor is not None:
        query = [("after", found.cursor), ("n", str(n))]
        query += [("type", t.removeprefix("dev.arca.")) for t in sorted(where.types)]
        query += [("repository", glob) for glob in where.repositories]
        headers["Link"] = f'</api/v1/events?{urlencode(query)}>; rel="next"'
    shown = await _visible(request, found.events)
    body = {"events": shown, "cursor": found.cursor, "more": found.more}
    return JSONResponse(body, headers=headers)


async def stream(request: Request) -> Response:
    """GET /api/v1/events/stream: Server-Sent Events from `Last-Event-ID` (or `after`)."""
    log = _log(request)
    after = _after(request.headers.get("last-event-id") or request.query_params.get("after"))
    where = _filter(request)
    poll: float = request.app.state.settings.events.stream_poll_seconds

    async def events() -> AsyncIterator[str]:
        cursor = after
        yield ": arca events\n\n"  # sends the headers at once
        quiet = 0.0
        while True:
            found = await log.page(cursor, 500, where)
            for event in await _visible(request, found.events):
                data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
                yield f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"
            if found.cursor is not None:
                cursor = EventId.parse(found.cursor)
            if found.more:
                continue
            if found.events:
                quiet = 0.0
            await log.wait(poll)
            quiet += poll
            if quiet >= _KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keepalive\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def webhooks(request: Request) -> Response:
    """GET /api/v1/events/webhooks: each webhook's cursor and dead-letter count."""
    return JSONResponse({"webhooks": await _webhooks(request).status()})


async def dead_letters(request: Request) -> Response:
    """GET /api/v1/events/webhooks/{webhook}/dead-letters."""
    hooks = _webhooks(request)
    name = hooks.check_name(request.path_params["webhook"])
    letters = await hooks.dead_letters(name)
    shown = {id(event) for event in await _visible(request, [x["event"] for x in letters])}
    letters = [letter for letter in letters if id(letter["event"]) in shown]
    return JSONResponse({"webhook": name, "dead_letters": letters})


async def redeliver(request: Request) -> Response:
    """POST /api/v1/events/webhooks/{webhook}/dead-letters/redeliver[?id=…]: queue dead
    letters (all, or the given ids) for delivery again."""
    hooks = _webhooks(request)
    name = hooks.check_name(request.path_params["webhook"])
    ids = [str(EventId.parse(value)) for value in request.query_params.getlist("id")]
    queued = await hooks.redeliver(name, ids or None)
    return JSONResponse({"webhook": name, "queued": queued}, status_code=202)
