"""end-8a/8b (tags/list), end-12a/12b (referrers) and the catalog: paged listings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arca.api import _http, auth
from arca.formats.mediatypes import OCI_INDEX


async def tags_list(request: Request) -> Response:
    registry = _http.registry(request)
    name = _http.name(request)
    limit = _http.page_size(request, registry.settings.limits.tags_page_size)
    last = request.query_params.get("last") or None
    page = await registry.tags.page(name, limit, last)
    headers = {}
    if page.more and page.tags:
        headers["Link"] = _http.next_link(f"/v2/{name}/tags/list", limit, page.tags[-1])
    return JSONResponse({"name": name, "tags": page.tags}, headers=headers)


async def catalog(request: Request) -> Response:
    registry = _http.registry(request)
    limit = _http.page_size(request, registry.settings.limits.catalog_page_size)
    last = request.query_params.get("last") or None
    names, more = await registry.catalog.page(limit, last, auth.pull_filter(request))
    headers = {}
    if more and names:
        headers["Link"] = _http.next_link("/v2/_catalog", limit, names[-1])
    return JSONResponse({"repositories": names}, headers=headers)


async def referrers(request: Request) -> Response:
    registry = _http.registry(request)
    name = _http.name(request)
    subject = _http.digest(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    limit = _http.page_size(request, registry.settings.limits.referrers_page_size)
    last = request.query_params.get("last") or None
    descriptors, cursor = await registry.referrers.page(name, subject, artifact_type, limit, last)
    headers = {}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    if cursor is not None:
        extra = {"artifactType": artifact_type} if artifact_type else {}
        headers["Link"] = _http.next_link(f"/v2/{name}/referrers/{subject}", limit, cursor, **extra)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return JSONResponse(index, headers=headers, media_type=OCI_INDEX)


async def base(request: Request) -> Response:
    """end-1: the API exists and speaks the distribution v2 protocol."""
    return JSONResponse({})
