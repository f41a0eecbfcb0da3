"""The one catalogue of errors arca answers with.

Every failure a client can cause is a `RegistryError` whose `code` knows its HTTP
status, so no handler ever picks a status by hand. The api layer renders them as
the distribution spec's `{"errors": [{"code", "message", "detail"}]}` body.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import ClassVar


class ErrorCode(enum.Enum):
    """The spec's error codes (distribution-spec "Error Codes"), with status and text."""

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    # Not in the spec's table but used by registries for the same purpose.
    RANGE_INVALID = (416, "requested range not satisfiable")
    MANIFEST_TOO_LARGE = (413, "manifest too large")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    UNAVAILABLE = (503, "storage unavailable")

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class RegistryError(Exception):
    """A failure with an OCI error code; subclasses fix the code and take facts."""

    code: ClassVar[ErrorCode]

    def __init__(
        self,
        message: str | None = None,
        detail: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.code.message
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.code.status

    def to_json(self) -> dict[str, object]:
        entry: dict[str, object] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}


class BlobUnknown(RegistryError):
    code = ErrorCode.BLOB_UNKNOWN

    def __init__(self, digest: object) -> None:
        super().__init__(f"blob unknown to registry: {digest}", {"digest": str(digest)})


class BlobUploadInvalid(RegistryError):
    code = ErrorCode.BLOB_UPLOAD_INVALID


class BlobUploadUnknown(RegistryError):
    code = ErrorCode.BLOB_UPLOAD_UNKNOWN

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"blob upload unknown to registry: {session_id}", {"session_id": session_id}
        )


class DigestInvalid(RegistryError):
    code = ErrorCode.DIGEST_INVALID


class ManifestBlobUnknown(RegistryError):
    code = ErrorCode.MANIFEST_BLOB_UNKNOWN

    def __init__(self, digest: object) -> None:
        super().__init__(
            f"manifest references a blob or manifest unknown to this repository: {digest}",
            {"digest": str(digest)},
        )


class ManifestInvalid(RegistryError):
    code = ErrorCode.MANIFEST_INVALID


class ManifestUnknown(RegistryError):
    code = ErrorCode.MANIFEST_UNKNOWN

    def __init__(self, reference: object) -> None:
        super().__init__(
            f"manifest unknown to registry: {reference}", {"reference": str(reference)}
        )


class ManifestTooLarge(RegistryError):
    code = ErrorCode.MANIFEST_TOO_LARGE

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"manifest of {size} bytes exceeds the limit of {limit} bytes",
            {"size": size, "limit": limit},
        )


class NameInvalid(RegistryError):
    code = ErrorCode.NAME_INVALID


class NameUnknown(RegistryError):
    code = ErrorCode.NAME_UNKNOWN

    def __init__(self, name: str) -> None:
        super().__init__(f"repository name not known to registry: {name}", {"name": name})


class SizeInvalid(RegistryError):
    code = ErrorCode.SIZE_INVALID


class Unauthorized(RegistryError):
    code = ErrorCode.UNAUTHORIZED


class Denied(RegistryError):
    code = ErrorCode.DENIED


class Unsupported(RegistryError):
    code = ErrorCode.UNSUPPORTED


class TooManyRequests(RegistryError):
    code = ErrorCode.TOOMANYREQUESTS


class Unavailable(RegistryError):
    code = ErrorCode.UNAVAILABLE


class PaginationNumberInvalid(RegistryError):
    code = ErrorCode.PAGINATION_NUMBER_INVALID


class RangeInvalid(RegistryError):
    """416: a chunk or read range that does not fit what is stored.

    For uploads the spec asks for the session's current `Range` and `Location` so the
    client can resume; for blob reads the current size in `Content-Range`.
    """

    code = ErrorCode.RANGE_INVALID
