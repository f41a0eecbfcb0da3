"""POST /api/v1/gc: run the garbage collector now (`?dry_run=true`: report only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arca.api.auth import access
from arca.auth.policy import ADMIN
from arca.errors import Denied, ParameterInvalid, ReadOnly, Unavailable
from arca.lifecycle.gc import Collector, CollectorBusy


async def collect(request: Request) -> Response:
    found = access(request)  # None when auth is off; the route's guard asked for a login
    if found is not None and ADMIN not in await found.auth.rights(found.identity, "*"):
        # GC acts on every repository: only who is admin on all of them may run it.
        raise Denied("running garbage collection needs admin on every repository")
    if getattr(request.app.state, "read_only", False):
        raise ReadOnly()
    raw = request.query_params.get("dry_run", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ParameterInvalid(
            f"dry_run must be true or false, not {raw[:20]!r}", {"dry_run": raw[:20]}
        )
    collector = Collector(request.app.state.registry, request.app.state.registry.settings)
    try:
        report = await collector.run(dry_run=raw in ("true", "1"))
    except CollectorBusy:
        raise Unavailable(
            "another garbage collection is running; retry when it has finished",
            headers={"Retry-After": "5"},
        ) from None
    return JSONResponse(report.to_json())
