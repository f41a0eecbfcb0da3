"""/api/v1 artifact endpoints: parse the query, call ArtifactControl once, shape the JSON."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arca.api import _http
from arca.api.control import _http as _query
from arca.api.control import shapes
from arca.errors import ParameterInvalid


class ArtifactsEndpoint(HTTPEndpoint):
    """The artifacts of a repository: list them (GET), delete those with a label (DELETE)."""

    async def get(self, request: Request) -> Response:
        name = _http.name(request)
        filters, limit = _query.labels(request), _query.limit(request)
        window = _query.window(request)
        page = await _query.control(request).page(
            name, filters, limit, _query.cursor(request), window
        )
        headers = {}
        if page.cursor is not None:
            query = urlencode(
                [
                    *(("label", f"{k}={v}") for k, v in filters.items()),
                    *(
                        (key, request.query_params[key])
                        for key in ("since", "until")
                        if request.query_params.get(key)
                    ),
                    ("limit", str(limit)),
                    ("cursor", page.cursor),
                ]
            )
            headers["Link"] = f'</api/v1/repositories/{name}/artifacts?{query}>; rel="next"'
        body = {
            "name": name,
            "artifacts": [shapes.summary(entry) for entry in page.entries],
            "cursor": page.cursor,
        }
        return JSONResponse(body, headers=headers)

    async def delete(self, request: Request) -> Response:
        name = _http.name(request)
        deleted = await _query.control(request).delete_by_label(
            name, _query.labels(request), _query.window(request)
        )
        return JSONResponse({"name": name, "deleted": [str(digest) for digest in deleted]})


async def latest(request: Request) -> Response:
    name = _http.name(request)
    entry = await _query.control(request).latest(
        name, _query.labels(request), _query.window(request)
    )
    return JSONResponse(shapes.summary(entry))


async def resolve_prefix(request: Request) -> Response:
    """A short digest (as `arca ls` prints it) to the one full digest it stands for."""
    name = _http.name(request)
    digest = await _query.control(request).resolve_prefix(name, _query.digest_prefix(request))
    return JSONResponse({"name": name, "digest": str(digest)})


async def record(request: Request) -> Response:
    name, reference = _http.name(request), request.path_params["reference"]
    found = await _query.control(request).record(name, reference)
    return JSONResponse(shapes.record(found))


async def verify(request: Request) -> Response:
    """200 whatever the outcome: the report's `ok` says whether every blob matched."""
    name, reference = _http.name(request), request.path_params["reference"]
    result = await _query.control(request).verify(name, reference)
    return JSONResponse(shapes.verification(result))


_LABEL_BODY_LIMIT = 256 << 10


async def label(request: Request) -> Response:
    """Add or remove labels without changing the artifact's digest (docs/artifacts.md,
    "Labels after the push"): body `{"set": {key: value}, "remove": [key]}`."""
    name, reference = _http.name(request), request.path_params["reference"]
    raw = await _http.read_body(
        request,
        _LABEL_BODY_LIMIT,
        ParameterInvalid(f"a label request body is at most {_LABEL_BODY_LIMIT} bytes"),
    )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ParameterInvalid('the body must be JSON: {"set": {…}, "remove": […]}') from None
    if not isinstance(body, dict) or set(body) - {"set", "remove"}:
        raise ParameterInvalid('the body must be an object with "set" and/or "remove"')
    labels, removed = body.get("set", {}), body.get("remove", [])
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ParameterInvalid('"set" must map label keys to string values')
    if not isinstance(removed, list) or not all(isinstance(k, str) for k in removed):
        raise ParameterInvalid('"remove" must be an array of label keys')
    # The event's actor is the request's user, as for every event (`acting_as`).
    result = await _query.control(request).label(name, reference, labels, removed)
    return JSONResponse(
        {
            "name": result.name,
            "digest": str(result.digest),
            "label_digest": str(result.label_digest),
            "labels": result.labels,
        },
        status_code=201,
    )
