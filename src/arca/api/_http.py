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

# ASCII digits only: `\d` and `str.isdigit` also accept "٣" and "²", which int()
# reads as 3 or refuses. Every number is then read by `decimal`.
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?$")
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
# No size, offset or count arca handles has more digits (2**63 has 19), and int()
# refuses more than 4,300 with a ValueError: longer numbers are refused up front.
MAX_DIGITS = 19
_DECIMAL = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")


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


def decimal(raw: str) -> int | None:
    """The one parser of numbers a client sends: ASCII digits, at most MAX_DIGITS of
    them, as an int; None for anything else, so each caller answers its own error."""
    return int(raw) if _DECIMAL.fullmatch(raw) else None


def count(request: Request, parameter: str) -> int | None:
    """A non-negative integer query parameter; None when absent or empty."""
    raw = request.query_params.get(parameter)
    if raw is None or raw == "":
        return None
    value = decimal(raw)
    if value is None:
        raise ParameterInvalid(
            f"{parameter} must be a non-negative integer of at most {MAX_DIGITS} digits,"
            f" not {raw[:40]!r}",
            {parameter: raw[:40]},
        )
    return value


def page_size(request: Request, default: int) -> int:
    """`n` from the query: a non-negative count, capped at `default`."""
    value = count(request, "n")
    return default if value is None else min(value, default)


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    value = decimal(raw)
    if value is None:
        raise BlobUploadInvalid(f"invalid Content-Length {raw[:40]!r}")
    return value


def chunk_start(request: Request) -> int | None:
    """The start offset of a PATCH's Content-Range, checked against Content-Length."""
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE.match(raw.strip())
    if match is None:
        raise ChunkOutOfOrder(f"invalid Content-Range {raw[:60]!r}; expected <start>-<end>")
    start, end = decimal(match[1]), decimal(match[2])
    if start is None or end is None:
        raise ChunkOutOfOrder(
            f"Content-Range offsets have at most {MAX_DIGITS} digits, not {raw[:60]!r}"
        )
    length = content_length(request)
    if end < start or (length is not None and end - start + 1 != length):
        raise ChunkOutOfOrder(
            f"Content-Range {raw[:60]!r} does not match Content-Length {length}",
        )
    return start


def read_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=a-b` range as (offset, length); None means the whole blob."""
    if not header:
        return None
    unsatisfiable = {"Content-Range": f"bytes */{size}"}
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        raise RangeNotSatisfiable(
            f"unsupported Range {header[:60]!r}; use a single bytes=<start>-<end>",
            headers=unsatisfiable,
        )
    first = decimal(match[1]) if match[1] else None
    last = decimal(match[2]) if match[2] else None
    if (match[1] and first is None) or (match[2] and last is None):
        raise RangeNotSatisfiable(
            f"Range offsets have at most {MAX_DIGITS} digits, not {header[:60]!r}",
            headers=unsatisfiable,
        )
    if first is None:  # suffix: the last N bytes; none of an empty blob, or "-0", exist
        assert last is not None
        length = min(last, size)
        if length == 0:
            raise RangeNotSatisfiable(
                f"range {header!r} selects no bytes of the blob of {size} bytes",
                headers=unsatisfiable,
            )
        return size - length, length
    start = first
    end = last if last is not None else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(
            f"range {header!r} is outside the blob of {size} bytes",
            headers=unsatisfiable,
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
