"""end-3 (GET/HEAD), end-7 (PUT) and end-9 (DELETE) on manifests."""

from __future__ import annotations

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from arca.api import _http
from arca.errors import ManifestTooLarge
from arca.formats.artifact import ARTIFACT_MEDIA_TYPE
from arca.formats.digest import Digest
from arca.formats.mediatypes import normalize_content_type
from arca.registry.manifests import Revision

# The OCI manifest digest behind a CBOR view (whose own digest is Docker-Content-Digest).
MANIFEST_DIGEST_HEADER = "Arca-Manifest-Digest"


def _headers(revision: Revision) -> dict[str, str]:
    return {
        "Content-Type": revision.media_type,
        "Content-Length": str(revision.size),
        "Docker-Content-Digest": str(revision.digest),
        "ETag": f'"{revision.digest}"',
    }


def wants_artifact_view(accept: str | None) -> bool:
    """Whether Accept prefers arca's CBOR view over every other type it lists."""
    if not accept or ARTIFACT_MEDIA_TYPE not in accept:
        return False
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        media_type, _, parameters = item.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        candidate = (-quality, position, media_type.strip().lower())
        if quality > 0 and (best is None or candidate < best):
            best = candidate
    return best is not None and best[2] == ARTIFACT_MEDIA_TYPE


def _view_headers(revision: Revision, document: bytes) -> dict[str, str]:
    return {
        "Content-Type": ARTIFACT_MEDIA_TYPE,
        "Content-Length": str(len(document)),
        "Docker-Content-Digest": str(Digest.of(document)),
        MANIFEST_DIGEST_HEADER: str(revision.digest),
        "Vary": "Accept",
    }


class ManifestEndpoint(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        registry = _http.registry(request)
        name, reference = _http.name(request), request.path_params["reference"]
        if wants_artifact_view(request.headers.get("accept")):
            stored, document = await registry.artifacts.view(name, reference)
            return Response(document, headers=_view_headers(stored.revision, document))
        stored = await registry.manifests.pull(name, reference)
        return Response(stored.data, headers=_headers(stored.revision))

    async def head(self, request: Request) -> Response:
        registry = _http.registry(request)
        name, reference = _http.name(request), request.path_params["reference"]
        if wants_artifact_view(request.headers.get("accept")):
            stored, document = await registry.artifacts.view(name, reference)
            return Response(headers=_view_headers(stored.revision, document))
        revision = await registry.manifests.revision(name, reference)
        return Response(headers=_headers(revision))

    async def put(self, request: Request) -> Response:
        registry = _http.registry(request)
        name = _http.name(request)
        reference = request.path_params["reference"]
        limit = registry.manifests.max_bytes
        length = _http.content_length(request) or 0
        data = await _http.read_body(
            request, limit, ManifestTooLarge(max(length, limit + 1), limit)
        )
        content_type = request.headers.get("content-type")
        tags = tuple(request.query_params.getlist("tag"))
        if normalize_content_type(content_type) == ARTIFACT_MEDIA_TYPE:
            result = await registry.artifacts.put(name, reference, data, tags)
        else:
            result = await registry.manifests.put(name, reference, data, content_type, tags)
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
