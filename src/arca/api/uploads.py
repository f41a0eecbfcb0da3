"""end-4a/4b/11 (POST: open, monolithic, mount), end-5 (PATCH), end-6 (PUT close),
end-13 (GET status) and DELETE (cancel)."""

from __future__ import annotations

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from arca.api import _http, auth
from arca.formats.digest import Digest
from arca.formats.reference import validate_name
from arca.registry.uploads import UploadStatus, range_header


def _progress(request: Request, name: str, status: UploadStatus, code: int) -> Response:
    headers = {
        "Location": _http.upload_location(request, name, status.session_id),
        "Range": range_header(status.offset),
        "Docker-Upload-UUID": status.session_id,
        "Content-Length": "0",
    }
    return Response(status_code=code, headers=headers)


def _created(request: Request, name: str, digest: Digest) -> Response:
    headers = {
        "Location": _http.absolute(request, f"/v2/{name}/blobs/{digest}"),
        "Docker-Content-Digest": str(digest),
        "Content-Length": "0",
    }
    return Response(status_code=201, headers=headers)


class UploadStartEndpoint(HTTPEndpoint):
    async def post(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        mount = request.query_params.get("mount")
        if mount is not None:
            digest = _http.digest(mount)
            source = request.query_params.get("from")
            if source is not None:
                source = validate_name(source)
            allowed, source = await auth.mount_source(request, name, digest, source)
            if allowed and await registry.uploads.mount(name, digest, source):
                return _created(request, name, digest)
        elif "digest" in request.query_params:
            digest = _http.query_digest(request)
            await registry.uploads.monolithic(
                name, digest, _http.body(request), _http.content_length(request)
            )
            return _created(request, name, digest)
        status = await registry.uploads.start(name)
        response = _progress(request, name, status, 202)
        if registry.driver.chunk_min_length:
            response.headers["OCI-Chunk-Min-Length"] = str(registry.driver.chunk_min_length)
        return response


class UploadEndpoint(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        status = await registry.uploads.status(name, request.path_params["session_id"])
        return _progress(request, name, status, 204)

    async def patch(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        status = await registry.uploads.append(
            name,
            request.path_params["session_id"],
            _http.body(request),
            start=_http.chunk_start(request),
            length=_http.content_length(request),
        )
        return _progress(request, name, status, 202)

    async def put(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        digest = await registry.uploads.finish(
            name,
            request.path_params["session_id"],
            _http.query_digest(request),
            _http.body(request),
            start=_http.chunk_start(request),
            length=_http.content_length(request),
        )
        return _created(request, name, digest)

    async def delete(self, request: Request) -> Response:
        registry = _http.registry(request)
        await registry.uploads.cancel(_http.name(request), request.path_params["session_id"])
        return Response(status_code=204)
