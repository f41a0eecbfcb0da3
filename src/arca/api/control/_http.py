"""Query parsing shared by the /api/v1 endpoints: label filters, limit, cursor, time window."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.requests import Request

from arca.api import _http
from arca.control.artifacts import ArtifactControl
from arca.control.index import TimeWindow
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


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{4,64})")


def window(request: Request) -> TimeWindow:
    """`since` and `until`: RFC 3339 times with an offset (`2026-06-01T00:00:00Z`),
    inclusive; `since` rounds up and `until` down to whole seconds, as creation times are."""
    bounds: dict[str, int | None] = {}
    for key in ("since", "until"):
        raw = request.query_params.get(key)
        if raw is None or raw == "":
            bounds[key] = None
            continue
        if not _RFC3339.fullmatch(raw):
            raise ParameterInvalid(
                f"{key} must be an RFC 3339 time with an offset, e.g. 2026-06-01T00:00:00Z,"
                f" not {raw[:50]!r}",
                {key: raw[:50]},
            )
        try:
            moment = datetime.fromisoformat(raw.replace("z", "Z").replace("t", "T"))
        except ValueError:
            raise ParameterInvalid(
                f"{key}: {raw[:50]!r} is not a valid time", {key: raw[:50]}
            ) from None
        seconds = moment.astimezone(UTC).timestamp()
        whole = int(seconds)
        bounds[key] = whole + 1 if key == "since" and whole < seconds else whole
    since, until = bounds["since"], bounds["until"]
    return TimeWindow(since=since, until=until)


def digest_prefix(request: Request) -> str:
    """A sha256 manifest digest's first 4 to 64 hex digits (`sha256:` optional)."""
    raw = request.path_params["prefix"]
    match = _PREFIX.fullmatch(raw)
    if match is None:
        raise ParameterInvalid(
            f"{raw[:80]!r} is not a digest prefix: 4 to 64 lowercase hex digits",
            {"prefix": raw[:80]},
        )
    return match[1]
