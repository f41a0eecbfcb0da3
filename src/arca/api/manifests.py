"""end-3 (GET/HEAD), end-7 (PUT) and end-9 (DELETE) on manifests."""

from __future__ import annotations

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from arca.api import _http
from arca.errors import ManifestTooLarge
from arca.registry.manifests import Revision


def _headers(revision: Revision) -> dict[str, str]:
    return {
        "Content-Type": revision.media_type,
        "Content-Length": str(revision.size),
        "Docker-Content-Digest": str(revision.digest),
        "ETag": f'"{revision.digest}"',
    }


class ManifestEndpoint(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        registry = _http.registry(request)
        stored = await registry.manifests.get(_http.name(request), request.path_params["reference"])
        return Response(stored.data, headers=_headers(stored.revision))

    async def head(self, request: Request) -> Response:
        registry = _http.registry(request)
        revision = await registry.manifests.revision(
            _http.name(request), request.path_params["reference"]
        )
        return Response(headers=_headers(revision))

    async def put(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        reference = request.path_params["reference"]
        limit = registry.manifests.max_bytes
        length = _http.content_length(request) or 0
        data = await _http.read_body(request, limit, ManifestTooLarge(max(length, limit + 1), limit))
        result = await registry.manifests.put(
            name,
            reference,
            data,
            request.headers.get("content-type"),
            tuple(request.query_params.getlist("tag")),
        )
        headers = {
            "Location": _http.absolute(request, f"/v2/{name}/manifests/{result.digest}"),
            "Docker-Content-Digest": str(result.digest),
            "Content-Length": "0",
        }
        if result.subject is not None:
            headers["OCI-Subject"] = str(result.subject)
        if request.query_params.getlist("tag"):
            headers["OCI-Tag"] = ",".join(result.tags)
        return Response(status_code=201, headers=headers)

    async def delete(self, request: Request) -> Response:
        registry = _http.registry(request)
        await registry.manifests.delete(_http.name(request), request.path_params["reference"])
        return Response(status_code=202)
