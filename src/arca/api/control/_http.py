"""Query parsing shared by the /api/v1 endpoints: label filters, limit, cursor."""

from __future__ import annotations

from starlette.requests import Request

from arca.api import _http
from arca.control.artifacts import ArtifactControl
from arca.errors import ParameterInvalid

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def control(request: Request) -> ArtifactControl:
    found: ArtifactControl = request.app.state.control
    return found


def labels(request: Request) -> dict[str, str]:
    """`label=<key>=<value>` parameters (repeatable), each one a filter all must match."""
    filters: dict[str, str] = {}
    for raw in request.query_params.getlist("label"):
        key, separator, value = raw.partition("=")
        if not separator:
            raise ParameterInvalid(
                f"label filter {raw[:200]!r} must be <key>=<value>", {"label": raw[:200]}
            )
        if filters.get(key, value) != value:
            raise ParameterInvalid(
                f"label {key[:130]!r} is given two values; no artifact can match both",
                {"label": key[:130]},
            )
        filters[key] = value
    return filters


def limit(request: Request) -> int:
    """`limit`: 1 to MAX_LIMIT entries (more is capped), DEFAULT_LIMIT when absent."""
    value = _http.count(request, "limit")
    if value is None:
        return DEFAULT_LIMIT
    if value == 0:
        raise ParameterInvalid("limit must be a positive integer, not 0", {"limit": "0"})
    return min(value, MAX_LIMIT)


def cursor(request: Request) -> str | None:
    return request.query_params.get("cursor") or None
