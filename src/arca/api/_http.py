"""Request parsing shared by the /v2 endpoints: path values, query numbers, ranges."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request

from arca.errors import (
    BlobUploadInvalid,
    ChunkOutOfOrder,
    ParameterInvalid,
    RangeNotSatisfiable,
    RegistryError,
)
from arca.formats.digest import Digest
from arca.formats.reference import validate_name
from arca.registry.registry import Registry

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def registry(request: Request) -> Registry:
    found: Registry = request.app.state.registry
    return found


def name(request: Request) -> str:
    return validate_name(request.path_params["name"])


def digest(value: str) -> Digest:
    return Digest.parse(value)


def query_digest(request: Request) -> Digest:
    value = request.query_params.get("digest")
    if not value:
        raise BlobUploadInvalid("the digest query parameter is required to close an upload")
    return Digest.parse(value)


def page_size(request: Request, default: int) -> int:
    """`n` from the query: a non-negative count, capped at `default`."""
    raw = request.query_params.get("n")
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise ParameterInvalid(f"n must be a non-negative integer, not {raw!r}")
    return min(int(raw), default)


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise BlobUploadInvalid(f"invalid Content-Length {raw!r}")
    return int(raw)


def chunk_start(request: Request) -> int | None:
    """The start offset of a PATCH's Content-Range, checked against Content-Length."""
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.match(raw.strip())
    if match is None:
        raise ChunkOutOfOrder(f"invalid Content-Range {raw!r}; expected <start>-<end>")
    start, end = int(match[1]), int(match[2])
    length = content_length(request)
    if end < start or (length is not None and end - start + 1 != length):
        raise ChunkOutOfOrder(
            f"Content-Range {raw!r} does not match Content-Length {length}",
        )
    return start


def read_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=a-b` range as (offset, length); None means the whole blob."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        raise RangeNotSatisfiable(
            f"unsupported Range {header!r}; use a single bytes=<start>-<end>",
            headers={"Content-Range": f"bytes */{size}"},
        )
    if not match[1]:  # suffix: the last N bytes; none of an empty blob, or "-0", exist
        length = min(int(match[2]), size)
        if length == 0:
            raise RangeNotSatisfiable(
                f"range {header!r} selects no bytes of the blob of {size} bytes",
                headers={"Content-Range": f"bytes */{size}"},
            )
        return size - length, length
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(
            f"range {header!r} is outside the blob of {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    end = min(end, size - 1)
    return start, end - start + 1


async def body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def read_body(request: Request, limit: int, too_large: RegistryError) -> bytes:
    """The whole (small) body, refusing to buffer past `limit` bytes."""
    length = content_length(request)
    if length is not None and length > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


def next_link(path: str, n: int, last: str, **extra: str) -> str:
    query = urlencode({**extra, "n": n, "last": last})
    return f'<{path}?{query}>; rel="next"'


def upload_location(request: Request, repository: str, session_id: str) -> str:
    return absolute(request, f"/v2/{repository}/blobs/uploads/{session_id}")


def absolute(request: Request, path: str) -> str:
    base: str = request.app.state.public_url
    return f"{base}{path}"
