"""What the client raises: one base class, and the server's answers mapped in one place.

`ResponseError` carries the registry's error body (`code`, `message`, `detail`, the
same catalogue for /v2 and /api/v1). Its subclasses sort answers the way a script
wants to branch on them: nothing there (`NotFound`), a request the server refuses
(`RequestRejected`), a server that failed (`ServerError`); `TransportError` when the
server could not be reached at all. The CLI maps them to exit codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx


class ArcaError(Exception):
    """Base of everything the client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ArcaError):
    """The caller asked for something that cannot be done (an invalid artifact, a bad path)."""


class TagExists(UsageError):
    """A push would move a tag that names another artifact (pass `force` to move it)."""


class TransportError(ArcaError):
    """The registry could not be reached or the connection broke."""


class IntegrityError(ArcaError):
    """Downloaded bytes do not match their digest; nothing was kept."""


class UnsafeArtifact(ArcaError):
    """An artifact whose paths cannot be written safely (outside the target, `x` and
    `x/y`, names too long for a file system); nothing was written."""


class LocalFileError(ArcaError):
    """The local file system refused a read or write (permissions, disk full, …)."""


class ResponseError(ArcaError):
    def __init__(
        self, status: int, code: str, message: str, detail: object = None, method: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.method = method

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}"


class NotFound(ResponseError):
    """404: no such repository, artifact, tag or blob."""


class RequestRejected(ResponseError):
    """Another 4xx: the request is invalid, unauthorised or denied."""


class ServerError(ResponseError):
    """5xx, or an answer the client cannot understand."""


def error_for(response: httpx.Response) -> ResponseError:
    """The error a non-success answer stands for (its body must have been read)."""
    code, message, detail = f"HTTP_{response.status_code}", response.reason_phrase, None
    try:
        first = response.json()["errors"][0]
        code, message, detail = str(first["code"]), str(first["message"]), first.get("detail")
    except (ValueError, KeyError, IndexError, TypeError):
        text = response.text.strip()
        if text:
            message = text[:500]
        elif response.status_code == 404:  # a HEAD has no body: say what was not found
            code, message = _unknown(response.request.url.path)
    status = response.status_code
    kind = NotFound if status == 404 else RequestRejected if 400 <= status < 500 else ServerError
    return kind(status, code, message, detail, response.request.method)


def _unknown(path: str) -> tuple[str, str]:
    """The spec's code for a 404 without a body, from the /v2 path that was asked for."""
    for part, code, message in (
        ("/manifests/", "MANIFEST_UNKNOWN", "manifest unknown to registry"),
        ("/blobs/", "BLOB_UNKNOWN", "blob unknown to registry"),
    ):
        if path.startswith("/v2/") and part in path:
            name, _, reference = path.removeprefix("/v2/").rpartition(part)
            separator = "@" if ":" in reference else ":"
            return code, f"{message}: {name}{separator}{reference}"
    return "HTTP_404", "Not Found"


@contextlib.contextmanager
def transport_errors(url: str) -> Iterator[None]:
    """httpx's connection failures as TransportError, naming the registry."""
    try:
        yield
    except httpx.TransportError as error:
        raise TransportError(f"cannot reach {url}: {error or type(error).__name__}") from error
