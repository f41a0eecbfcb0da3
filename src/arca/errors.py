"""The one catalogue of errors arca answers with.

Every failure a client can cause is a `RegistryError` subclass that fixes its code and
status, so no handler ever picks a status by hand. The api layer renders them as the
distribution spec's `{"errors": [{"code", "message", "detail"}]}` body.

The spec says a 4xx JSON body's `code` MUST be one of its fourteen codes, so client
errors use only those; where the spec asks for a status other than the code's usual
one (416 for an out-of-order chunk, 413 for an oversized manifest) the subclass says
so. Server errors (5xx) are outside that rule and have codes of their own.
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
    # Server errors: the spec's closed set of codes covers 4xx answers only.
    UNAVAILABLE = (503, "storage unavailable")
    UNKNOWN = (500, "internal server error")

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class RegistryError(Exception):
    """A failure with an OCI error code; subclasses fix the code and take facts."""

    code: ClassVar[ErrorCode]
    status_override: ClassVar[int | None] = None

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
        return self.status_override or self.code.status

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
    code = ErrorCode.SIZE_INVALID
    status_override = 413

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"manifest of {size} bytes exceeds the limit of {limit} bytes",
            {"size": size, "limit": limit},
        )


class BlobTooLarge(RegistryError):
    """413 for a blob over `limits.blob_max_bytes`, refused before (or as soon as) the
    bytes would cross it; the code is the one an oversized manifest gets."""

    code = ErrorCode.SIZE_INVALID
    status_override = 413

    def __init__(self, size: int | None, limit: int) -> None:
        what = "the upload" if size is None else f"a blob of {size} bytes"
        super().__init__(
            f"{what} would exceed the limit of {limit} bytes per blob",
            {"size": size, "limit": limit},
        )


class TooManyUploads(RegistryError):
    """429 when a repository already has `limits.upload_sessions_per_repository` open
    upload sessions."""

    code = ErrorCode.TOOMANYREQUESTS

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(
            f"repository {name} already has {limit} open upload sessions, the limit;"
            " finish or cancel one (DELETE its Location) before starting another",
            {"name": name, "limit": limit},
        )


class NameInvalid(RegistryError):
    code = ErrorCode.NAME_INVALID


class NameUnknown(RegistryError):
    code = ErrorCode.NAME_UNKNOWN

    def __init__(self, name: str) -> None:
        super().__init__(f"repository name not known to registry: {name}", {"name": name})


class Unsupported(RegistryError):
    code = ErrorCode.UNSUPPORTED


class Unavailable(RegistryError):
    code = ErrorCode.UNAVAILABLE


class ChunkOutOfOrder(RegistryError):
    """416 for a chunk that does not start where the upload ends.

    The spec asks for the session's current `Range` and `Location` so the client can
    resume; the session itself is unchanged.
    """

    code = ErrorCode.BLOB_UPLOAD_INVALID
    status_override = 416


class RangeNotSatisfiable(RegistryError):
    """416 for a blob read outside the blob; `Content-Range` gives the real size."""

    code = ErrorCode.SIZE_INVALID
    status_override = 416


class ParameterInvalid(RegistryError):
    """A query parameter arca cannot use: a page size (`n`, `limit`), a label filter,
    a cursor. No spec code fits, so UNSUPPORTED (that value) with 400."""

    code = ErrorCode.UNSUPPORTED
    status_override = 400


class Unauthorized(RegistryError):
    """401: no credentials, or credentials arca does not accept; carries the challenge.

    The message never says which part was wrong (no user enumeration)."""

    code = ErrorCode.UNAUTHORIZED


class InvalidToken(Unauthorized):
    """401 for a bearer token arca did not issue, or that expired or was revoked."""

    def __init__(self) -> None:
        super().__init__("invalid or expired token")


class Denied(RegistryError):
    """403: the caller is known and may not do this. The message names no repository
    beyond the one the caller asked for (so nothing private leaks)."""

    code = ErrorCode.DENIED


class TagImmutable(Denied):
    """403 DENIED: a push, tag delete or manifest delete would move or remove a tag an
    `[[immutability]]` rule protects (docs/protection.md). Names the rule."""

    def __init__(self, name: str, tag: str, rule: str, digest: object, action: str) -> None:
        super().__init__(
            f"tag {name}:{tag} is immutable (rule {rule!r}): it names {digest} and cannot be"
            f" {action}",
            {"name": name, "tag": tag, "rule": rule, "digest": str(digest)},
        )


class QuotaExceeded(Denied):
    """403 DENIED: a push would take a repository over a `[[quotas]]` limit. The spec has
    no quota code; DENIED is the one clients show as "not allowed" without retrying
    (docs/protection.md, "Quotas")."""

    def __init__(self, name: str, rule: str, what: str, used: int, adding: int, limit: int) -> None:
        super().__init__(
            f"quota {what} of rule {rule!r} for {name}: used {used} of {limit},"
            f" this push adds {adding}",
            {
                "name": name,
                "rule": rule,
                "quota": what,
                "used": used,
                "adding": adding,
                "limit": limit,
            },
        )


class TooManyRequests(RegistryError):
    """429 with Retry-After: too many failed logins for one user or one address."""

    code = ErrorCode.TOOMANYREQUESTS


class ScopeInvalid(RegistryError):
    """A token request for an action arca does not know; no spec code fits, so
    UNSUPPORTED with 400."""

    code = ErrorCode.UNSUPPORTED
    status_override = 400


class ReadOnly(RegistryError):
    """A write while `[server] read_only` is set: 405 UNSUPPORTED, as distribution does."""

    code = ErrorCode.UNSUPPORTED

    def __init__(self) -> None:
        super().__init__("the registry is in read-only mode: pushes and deletes are refused")
