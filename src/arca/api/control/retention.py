"""/api/v1 retention and pins (docs/lifecycle.md).

POST /api/v1/retention/plan and /apply act on every repository a policy governs, so
the handler asks for admin on every repository (as POST /api/v1/gc does). Pins are
per repository: the routes ask for admin on it to pin or unpin, pull to list.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arca.api import _http
from arca.api.auth import access, pull_filter
from arca.api.control import _http as _query
from arca.auth.policy import ADMIN
from arca.errors import Denied, ManifestUnknown, ParameterInvalid, ReadOnly, Unavailable
from arca.lifecycle.pins import MAX_REASON, Pin, Pins, PinUnknown
from arca.lifecycle.retention import (
    Plan,
    PlanInvalid,
    Retention,
    RetentionBusy,
    UnsafePlan,
)

_MAX_PLAN_BYTES = 64 << 20


def _actor(request: Request) -> str | None:
    user = request.scope.get("state", {}).get("user")
    return str(user) if user else None


def _flag(request: Request, key: str, default: bool) -> bool:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise ParameterInvalid(f"{key} must be true or false, not {raw[:20]!r}", {key: raw[:20]})
    return raw.lower() in ("true", "1")


async def _admin_everywhere(request: Request, what: str) -> None:
    found = access(request)  # None when auth is off; the route's guard asked for a login
    if found is not None and ADMIN not in await found.auth.rights(found.identity, "*"):
        raise Denied(f"{what} needs admin on every repository")


def _retention(request: Request) -> Retention:
    registry = request.app.state.registry
    return Retention(registry, _query.control(request).index, registry.settings)


async def plan(request: Request) -> Response:
    """The plan now (writes nothing); `repository` narrows it to a glob."""
    await _admin_everywhere(request, "planning retention")
    repository = request.query_params.get("repository") or None
    found = await _retention(request).plan(repository)
    return JSONResponse(found.to_json())


async def apply(request: Request) -> Response:
    """Apply the plan in the body (a fresh one when the body is empty); a dry run
    unless `dry_run=false`; an unsafe plan only with `force=true`."""
    await _admin_everywhere(request, "applying retention")
    dry_run = _flag(request, "dry_run", True)
    force = _flag(request, "force", False)
    if not dry_run and getattr(request.app.state, "read_only", False):
        raise ReadOnly()
    body = await request.body()
    if len(body) > _MAX_PLAN_BYTES:
        raise ParameterInvalid("the plan is too large", {"size": len(body)})
    given: Plan | None = None
    if body.strip():
        try:
            given = Plan.from_json(json.loads(body))
        except (ValueError, PlanInvalid) as error:
            raise ParameterInvalid(f"the body is not a retention plan: {error}") from None
    try:
        report = await _retention(request).apply(
            given, dry_run=dry_run, force=force, actor=_actor(request)
        )
    except RetentionBusy:
        raise Unavailable(
            "another retention apply is running; retry when it has finished",
            headers={"Retry-After": "5"},
        ) from None
    except UnsafePlan as error:
        raise Denied(
            f"the plan is unsafe: {error}; read it, then apply with force=true",
            {"unsafe": error.problems},
        ) from None
    return JSONResponse(report.to_json())


async def all_pins(request: Request) -> Response:
    """Every pin whose repository the caller may pull."""
    may_pull = pull_filter(request)
    shown: list[dict[str, Any]] = []
    async for pin in Pins(request.app.state.registry.driver).all():
        if may_pull is None or await may_pull(pin.name):
            shown.append(pin.to_json())
    return JSONResponse({"pins": shown})


async def repository_pins(request: Request) -> Response:
    name = _http.name(request)
    pins = await Pins(request.app.state.registry.driver).of(name)
    return JSONResponse({"name": name, "pins": [pin.to_json() for pin in pins]})


async def pin(request: Request) -> Response:
    """PUT pins the manifest or tag (body: optional `{"reason": "…"}`); DELETE unpins."""
    name, reference = _http.name(request), request.path_params["reference"]
    registry = request.app.state.registry
    pins = Pins(registry.driver)
    if request.method == "DELETE":
        try:
            removed: Pin = await pins.remove(registry, name, reference, _actor(request))
        except PinUnknown:
            raise ManifestUnknown(f"{name} has no pin on {reference}") from None
        return JSONResponse(removed.to_json())
    body = await request.body()
    reason: object = ""
    if body.strip():
        try:
            raw = json.loads(body[: 4 * MAX_REASON + 100])
            reason = raw.get("reason", "") if isinstance(raw, dict) else None
        except ValueError:
            reason = None
        if not isinstance(reason, str):
            raise ParameterInvalid('the body must be {"reason": "…"}')
    assert isinstance(reason, str)
    added = await pins.add(registry, name, reference, reason, _actor(request))
    return JSONResponse(added.to_json(), status_code=201)
