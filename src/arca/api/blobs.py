"""end-2 (GET/HEAD a blob) and end-10 (DELETE a blob)."""

from __future__ import annotations

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from arca.api import _http
from arca.api.streaming import BlobResponse, ZeroCopyResponse, zero_copy
from arca.registry.blobs import BlobInfo

OCTET_STREAM = "application/octet-stream"
# A blob's blake3, when known (docs/api.md): lets a client check content with blake3.
BLAKE3_HEADER = "Arca-Content-Blake3"


def _headers(info: BlobInfo, length: int) -> dict[str, str]:
    return {
        "Content-Length": str(length),
        "Docker-Content-Digest": str(info.digest),
        "ETag": f'"{info.digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "Content-Type": OCTET_STREAM,
    }


class BlobEndpoint(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        registry = _http.registry(request)
        info = await registry.blobs.stat(
            _http.name(request), _http.digest(request.path_params["digest"])
        )
        url = await registry.blobs.url_for(info.digest)
        if url is not None:
            return RedirectResponse(
                url, status_code=307, headers={"Docker-Content-Digest": str(info.digest)}
            )
        window = _http.read_range(request.headers.get("range"), info.size)
        if window is None:
            status, (offset, length) = 200, (0, info.size)
            headers = _headers(info, info.size)
        else:
            status, (offset, length) = 206, window
            headers = _headers(info, length)
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{info.size}"
        if length and zero_copy(request.scope):
            file = await registry.blobs.local_file(info.digest)
            if file is not None:
                return ZeroCopyResponse(file, offset, length, status, headers)
        stream = registry.blobs.read(info.digest, offset, length if window else None)
        return BlobResponse(stream, status, headers)

    async def head(self, request: Request) -> Response:
        registry = _http.registry(request)
        info = await registry.blobs.claim(
            _http.name(request), _http.digest(request.path_params["digest"])
        )
        headers = _headers(info, info.size)
        meta = await registry.blobs.recorded_meta(info.digest)
        if meta is not None and meta.blake3 is not None:
            headers[BLAKE3_HEADER] = str(meta.blake3)
        return Response(headers=headers)

    async def delete(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        digest = _http.digest(request.path_params["digest"])
        await registry.blobs.stat(name, digest)
        await registry.blobs.unlink(name, digest)
        return Response(status_code=202, headers={"Docker-Content-Digest": str(digest)})
