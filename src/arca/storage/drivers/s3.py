"""Objects in an S3 bucket: AWS S3, MinIO, Ceph RGW or any S3-compatible store.

The object at `a/b` is the key `<prefix>a/b`; prefixes are key prefixes ending in `/`.
Every call goes through one aiobotocore client per driver, with botocore's standard
retry mode (bounded exponential backoff on throttling, 5xx and dropped connections)
and connect/read timeouts, so a dead endpoint is a BackendUnavailable, never a hang.

Writers (upload sessions) are multipart uploads. Their bookkeeping lives in one
state object next to the key, `<key>.writer~` (names ending in `~` are reserved by
the contract, so it can't collide with an object and `list`/`walk` hide it):

    b"arca-s3-writer 1\\n" + u32 header length + JSON header + tail bytes

The header names the multipart upload (null until the first part is sent) and its
parts as [number, ETag, size]; the tail is the bytes after the last part, shorter
than S3's 5 MiB minimum part size. A writer holds at most one part in memory and
sends a part whenever `part_size` bytes are buffered. `close()` sends a buffer of
at least 5 MiB as a part and rewrites the state object (parts and tail together, in
one PUT, so they always agree); `writer(path, append=True)` reads it back and
carries on, from any process. Parts a crashed writer sent after its last `close()`
are simply overwritten, since numbering restarts from the state. `commit()` sends
the tail as the last part and completes the upload (with no upload yet: one plain
PUT), then deletes the state; `cancel()` aborts the upload and deletes the state, and
so does `delete()` for every writer at or under the path it deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.loaders import Loader, create_loader

from arca.storage.driver import (
    CHUNK_SIZE,
    AlreadyExists,
    BackendUnavailable,
    Driver,
    FileWriter,
    InvalidOffset,
    ObjectInfo,
    PathNotFound,
    StorageError,
)
from arca.storage.drivers._listing import in_name_order, is_object_path
from arca.storage.options import DriverOptions, OptionError, check_object_store, secret

MIN_PART_SIZE = 5 << 20
"""S3's minimum size of every part but the last."""
MAX_PART_SIZE = 5 << 30
MAX_PARTS = 10_000
MAX_COPY_SIZE = 5 << 30
"""CopyObject's limit; larger objects are copied part by part (UploadPartCopy)."""
COPY_PART_SIZE = 1 << 30
WRITER_SUFFIX = ".writer~"

_COPY_CONCURRENCY = 4
_POOL_CONNECTIONS = 64
_STATE_MAGIC = b"arca-s3-writer 1\n"
_STATE_HEADER = struct.Struct(">I")

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload"})
_PRECONDITION = frozenset({"PreconditionFailed", "412"})
_UNAVAILABLE = frozenset(
    {
        "NoSuchBucket", "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
        "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed",
        "PermanentRedirect", "301", "SlowDown", "Throttling", "ThrottlingException",
        "RequestTimeout", "ServiceUnavailable", "InternalError",
    }
)  # fmt: skip


@contextlib.contextmanager
def _map_errors(path: str, offset: int = 0) -> Iterator[None]:
    """The one place where botocore and aiohttp errors become the contract's exceptions."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = f"{code} {error.get('Message', '')}".strip()
        if code in _NOT_FOUND:
            raise PathNotFound(path) from exc
        if code in _PRECONDITION:
            raise AlreadyExists(path) from exc
        if code == "InvalidRange" or status == 416:
            raise InvalidOffset(path, offset) from exc
        if code in _UNAVAILABLE or status in (301, 401, 403) or status >= 500:
            raise BackendUnavailable(f"S3 refused the request for {path!r}: {detail}") from exc
        raise StorageError(f"S3 error for {path!r}: {detail}") from exc
    except ParamValidationError as exc:
        raise StorageError(f"invalid S3 request for {path!r}: {exc}") from exc
    except (BotoCoreError, aiohttp.ClientError, OSError) as exc:  # OSError: timeouts too
        raise BackendUnavailable(f"S3 endpoint unavailable ({path!r}): {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Part:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class S3Options(DriverOptions):
    """`[storage.s3]`: every key is documented in docs/configuration.md."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = secret()
    session_token: str | None = secret()
    addressing_style: str = "auto"
    redirect: bool = False
    public_endpoint_url: str | None = None
    part_size: int = 8 << 20
    max_attempts: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.bucket:
            raise OptionError("bucket", "is required")
        if any(c.isspace() or c == "/" for c in self.bucket):
            raise OptionError("bucket", f"must be a bucket name, not {self.bucket!r}")
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise OptionError(
                "addressing_style", f"must be auto, path or virtual, not {self.addressing_style!r}"
            )
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise OptionError(
                "part_size", f"must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes"
            )
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise OptionError(
                "access_key_id", "and secret_access_key go together: give both, or neither"
            )
        check_object_store(self, ("endpoint_url", "public_endpoint_url"), "key")


class S3Driver(Driver):
    name = "s3"
    chunk_min_length = MIN_PART_SIZE
    options_type = S3Options

    def __init__(self, bucket: str, **options: Any) -> None:
        """`options` are S3Options' fields, checked there."""
        settings = S3Options(bucket, **options)
        prefix = settings.prefix.strip("/")
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.part_size = settings.part_size
        self.redirect = settings.redirect
        # Instance attributes so tests can exercise multipart copies on small objects.
        self.copy_threshold = MAX_COPY_SIZE
        self.copy_part_size = COPY_PART_SIZE
        endpoint_url = settings.endpoint_url
        self._endpoints = {False: endpoint_url, True: settings.public_endpoint_url or endpoint_url}
        self._client_options: dict[str, Any] = {"region_name": settings.region}
        if settings.access_key_id is not None:  # else the standard AWS chain (env, files, IMDS…)
            self._client_options.update(
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                aws_session_token=settings.session_token,
            )
        self._config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": settings.addressing_style},
            retries={"max_attempts": settings.max_attempts, "mode": "standard"},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_pool_connections=_POOL_CONNECTIONS,
            # The 2025 botocore default (CRC trailers on every upload) breaks many
            # S3-compatible stores; arca verifies content by digest itself.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._session = get_session()
        self._session.register_component("data_loader", _loader())
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[bool, Any] = {}
        self._lock = asyncio.Lock()

    # -- reading -----------------------------------------------------------------------

    async def get(self, path: str) -> bytes:
        key = self._key(path)
        with _map_errors(path):
            s3 = await self._client()
            response = await s3.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        return data

    async def open_read(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        key = self._key(path)
        if offset < 0:
            raise InvalidOffset(path, offset)
        if length is not None and length <= 0:
            if offset > (await self.stat(path)).size:
                raise InvalidOffset(path, offset)
            return
        extra: dict[str, str] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"
        try:
            with _map_errors(path, offset):
                s3 = await self._client()
                response = await s3.get_object(Bucket=self.bucket, Key=key, **extra)
        except InvalidOffset:
            # S3 refuses a range starting at the end; the contract yields nothing there.
            if (await self.stat(path)).size != offset:
                raise
            return
        body = response["Body"]
        try:
            pieces: list[bytes] = []
            buffered = 0
            while True:
                with _map_errors(path, offset):
                    piece = await body.read(CHUNK_SIZE - buffered)
                if not piece:
                    break
                pieces.append(piece)
                buffered += len(piece)
                if buffered >= CHUNK_SIZE:
                    yield b"".join(pieces)
                    pieces, buffered = [], 0
            if pieces:
                yield b"".join(pieces)
        finally:
            body.close()

    async def stat(self, path: str) -> ObjectInfo:
        key = self._key(path)
        with _map_errors(path):
            s3 = await self._client()
            response = await s3.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            path, int(response["ContentLength"]), response["LastModified"].timestamp()
        )

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        base = self._key(prefix) + "/"
        params = {"Prefix": base, "Delimiter": "/"}
        if start_after is not None:
            # Every name after `start_after` has a key after this one; some keys after
            # it still belong to earlier names (e.g. `a/x` for `a-b`): filtered below.
            params["StartAfter"] = base + start_after
        async for name in in_name_order(self._children(prefix, base, params)):
            if start_after is None or name > start_after:
                yield name

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = self._key(prefix) + "/"
        async for page in self._pages(prefix, Prefix=base):
            for item in page.get("Contents", []):
                path = item["Key"][len(self.prefix) :]
                if is_object_path(path):
                    yield ObjectInfo(path, int(item["Size"]), item["LastModified"].timestamp())

    # -- writing -----------------------------------------------------------------------

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        key = self._key(path)
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        with _map_errors(path):
            s3 = await self._client()
            await s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    async def delete(self, path: str) -> None:
        key = self._key(path)
        found = False
        # One delimited listing tells whether `key` is an object, a writer, a prefix.
        exact: list[str] = []
        is_prefix = False
        async with contextlib.aclosing(self._pages(path, Prefix=key, Delimiter="/")) as pages:
            async for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"] in (key, key + WRITER_SUFFIX):
                        exact.append(item["Key"])
                prefixes = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
                is_prefix = is_prefix or key + "/" in prefixes
                if is_prefix or _past(page, key + "/"):
                    break
        if exact:
            found = True
            await self._delete_keys(path, exact)
        if is_prefix:
            async for page in self._pages(path, Prefix=key + "/"):
                keys = [item["Key"] for item in page.get("Contents", [])]
                if keys:
                    found = True
                    await self._delete_keys(path, keys)
        if not found:
            raise PathNotFound(path)

    async def delete_if(self, path: str, expected: bytes) -> bool:
        """GET, compare, then DeleteObject with `If-Match` on the ETag read: S3 refuses
        the delete (412) if the object was replaced meanwhile by different bytes."""
        key = self._key(path)
        try:
            with _map_errors(path):
                s3 = await self._client()
                response = await s3.get_object(Bucket=self.bucket, Key=key)
                async with response["Body"] as body:
                    data: bytes = await body.read()
                if data != expected:
                    return False
                await s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=response["ETag"])
        except (PathNotFound, AlreadyExists):  # gone, or replaced (412): not ours to delete
            return False
        return True

    async def move(self, source: str, destination: str) -> None:
        source_key, destination_key = self._key(source), self._key(destination)
        size = (await self.stat(source)).size
        with _map_errors(source):
            s3 = await self._client()
            if size <= self.copy_threshold:
                await s3.copy_object(
                    Bucket=self.bucket,
                    Key=destination_key,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                )
            else:
                await self._copy_in_parts(s3, source_key, destination_key, size)
            await s3.delete_object(Bucket=self.bucket, Key=source_key)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self._key(path)
        if not append:
            writer = _S3Writer(self, path, key, None, [], b"")
            await writer.save()
            return writer
        with _map_errors(path):
            s3 = await self._client()
            response = await s3.get_object(Bucket=self.bucket, Key=key + WRITER_SUFFIX)
            async with response["Body"] as body:
                state = await body.read()
        upload_id, parts, tail = _decode_state(path, state)
        return _S3Writer(self, path, key, upload_id, parts, tail)

    # -- the rest of the contract ------------------------------------------------------

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        if not self.redirect:
            return None
        key = self._key(path)
        with _map_errors(path):
            signer = await self._client(public=self._endpoints[True] != self._endpoints[False])
            url: str = await signer.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )
        return url

    async def check(self) -> None:
        try:
            with _map_errors(self.bucket):
                s3 = await self._client()
                await s3.head_bucket(Bucket=self.bucket)
        except BackendUnavailable:
            raise
        except StorageError as exc:  # HEAD has no body: a missing bucket is a bare 404
            raise BackendUnavailable(f"bucket {self.bucket!r} is not usable: {exc}") from exc

    async def close(self) -> None:
        self._clients.clear()
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        await stack.aclose()

    # -- helpers -----------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return self.prefix + path  # checked by the wrapper (storage/checked.py)

    async def _client(self, public: bool = False) -> Any:
        """The aiobotocore client, created on first use (`public`: the one that signs URLs)."""
        client = self._clients.get(public)
        if client is None:
            async with self._lock:
                client = self._clients.get(public)
                if client is None:
                    creating = self._session.create_client(
                        "s3",
                        endpoint_url=self._endpoints[public],
                        config=self._config,
                        **self._client_options,
                    )
                    client = await self._stack.enter_async_context(creating)
                    self._clients[public] = client
        return client

    async def _pages(self, path: str, **params: Any) -> AsyncGenerator[dict[str, Any], None]:
        """ListObjectsV2 pages."""
        with _map_errors(path):
            s3 = await self._client()
            async for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, **params
            ):
                yield page

    async def _children(self, path: str, base: str, params: dict[str, str]) -> AsyncIterator[str]:
        """Names under `base` in S3's order (a prefix sorts as `name/`), reserved ones too."""
        async for page in self._pages(path, **params):
            keys = [item["Key"] for item in page.get("Contents", [])]
            keys += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
            for key in sorted(keys):  # code point order == S3's UTF-8 byte order
                name = key[len(base) :].rstrip("/")
                if name:
                    yield name

    async def _delete_keys(self, path: str, keys: Iterable[str]) -> None:
        """Delete up to 1,000 keys in one request, aborting the uploads of writers among them."""
        keys = list(keys)
        for key in keys:
            if key.endswith(WRITER_SUFFIX):
                await self._abort_writer(path, key)
        with _map_errors(path):
            s3 = await self._client()
            response = await s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                raise ClientError({"Error": errors[0]}, "DeleteObjects")

    async def _abort_writer(self, path: str, state_key: str) -> None:
        try:
            with _map_errors(path):
                s3 = await self._client()
                response = await s3.get_object(Bucket=self.bucket, Key=state_key)
                async with response["Body"] as body:
                    state = await body.read()
        except PathNotFound:
            return
        upload_id, _, _ = _decode_state(path, state)
        if upload_id is not None:
            await self._abort_upload(path, state_key.removesuffix(WRITER_SUFFIX), upload_id)

    async def _abort_upload(self, path: str, key: str, upload_id: str) -> None:
        with contextlib.suppress(PathNotFound), _map_errors(path):
            s3 = await self._client()
            await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    async def _copy_in_parts(
        self, s3: Any, source_key: str, destination_key: str, size: int
    ) -> None:
        part_size = max(self.copy_part_size, -(-size // MAX_PARTS), MIN_PART_SIZE)
        started = await s3.create_multipart_upload(Bucket=self.bucket, Key=destination_key)
        upload_id = started["UploadId"]
        limit = asyncio.Semaphore(_COPY_CONCURRENCY)

        async def copy(number: int, start: int) -> dict[str, Any]:
            async with limit:
                response = await s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=destination_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    CopySourceRange=f"bytes={start}-{min(size, start + part_size) - 1}",
                )
            return {"ETag": response["CopyPartResult"]["ETag"], "PartNumber": number}

        try:
            starts = range(0, size, part_size)
            parts = await asyncio.gather(*(copy(n, s) for n, s in enumerate(starts, 1)))
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=destination_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=destination_key, UploadId=upload_id
                )
            raise


class _S3Writer(FileWriter):
    """A multipart upload with its tail and part list kept in `<key>.writer~`."""

    def __init__(
        self,
        driver: S3Driver,
        path: str,
        key: str,
        upload_id: str | None,
        parts: list[_Part],
        tail: bytes,
    ) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._upload_id = upload_id
        self._parts = parts
        self._buffer = bytearray(tail)
        self._size = sum(part.size for part in parts) + len(tail)
        self._saved = True
        self._ended = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        """Buffer `data`, sending each part as it fills; the buffer never exceeds a part.

        If sending fails, the bytes of this call not yet sent are dropped again, so
        `size` says what was accepted (for chunks up to a part: all of it or nothing).
        """
        self._check_open()
        part_size = self._driver.part_size
        rest = memoryview(data)
        while rest:
            taken = rest[: part_size - len(self._buffer)]
            rest = rest[len(taken) :]
            self._buffer += taken
            self._size += len(taken)
            self._saved = False
            if len(self._buffer) == part_size:
                try:
                    await self._send_buffered(part_size)
                except BaseException:
                    del self._buffer[len(self._buffer) - len(taken) :]
                    self._size -= len(taken)
                    raise

    async def close(self) -> None:
        if self._ended:
            return
        try:
            if len(self._buffer) >= MIN_PART_SIZE:
                await self._send_buffered(len(self._buffer))
            if not self._saved:
                await self.save()
        finally:
            self._end()

    async def commit(self) -> None:
        self._check_open()
        s3 = await self._s3()
        with _map_errors(self._path):
            if self._upload_id is not None and not self._parts:
                # An upload was started but no part landed: nothing to complete.
                await self._driver._abort_upload(self._path, self._key, self._upload_id)
                self._upload_id = None
            if self._upload_id is None:
                await s3.put_object(Bucket=self.bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                # The tail is the last part, which may be small; keep it buffered until
                # the upload completes, so a failed commit can still be closed and resumed.
                parts = list(self._parts)
                if self._buffer:
                    parts.append(await self._send_part(bytes(self._buffer), len(parts) + 1))
                await s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={
                        "Parts": [{"ETag": p.etag, "PartNumber": p.number} for p in parts]
                    },
                )
            await s3.delete_object(Bucket=self.bucket, Key=self._key + WRITER_SUFFIX)
        self._end()

    async def cancel(self) -> None:
        self._check_open()
        self._end()
        if self._upload_id is not None:
            await self._driver._abort_upload(self._path, self._key, self._upload_id)
        with _map_errors(self._path):
            s3 = await self._s3()
            await s3.delete_object(Bucket=self.bucket, Key=self._key + WRITER_SUFFIX)

    async def truncate(self, size: int) -> None:
        """Cut inside the buffered tail or at a part boundary; a sent part cannot be read
        back, so a cut inside one is InvalidOffset."""
        self._check_open()
        sent = 0
        kept: list[_Part] = []
        for part in self._parts:
            if sent + part.size > size:
                break
            kept.append(part)
            sent += part.size
        if not 0 <= size <= self._size or (len(kept) < len(self._parts) and sent != size):
            raise InvalidOffset(self._path, size)
        if len(kept) < len(self._parts):
            self._parts, self._buffer = kept, bytearray()  # later parts get overwritten
        else:
            del self._buffer[size - sent :]
        self._size = size
        await self.save()

    async def save(self) -> None:
        """Write the state object: the upload, its parts and the buffered tail."""
        header = json.dumps(
            {
                "upload_id": self._upload_id,
                "parts": [[part.number, part.etag, part.size] for part in self._parts],
            }
        ).encode()
        state = _STATE_MAGIC + _STATE_HEADER.pack(len(header)) + header + bytes(self._buffer)
        with _map_errors(self._path):
            s3 = await self._s3()
            await s3.put_object(Bucket=self.bucket, Key=self._key + WRITER_SUFFIX, Body=state)
        self._saved = True

    @property
    def bucket(self) -> str:
        return self._driver.bucket

    async def _s3(self) -> Any:
        with _map_errors(self._path):
            return await self._driver._client()

    def _check_open(self) -> None:
        if self._ended:
            raise StorageError(f"writer for {self._path} is closed")

    def _end(self) -> None:
        self._ended = True
        self._buffer = bytearray()

    async def _send_buffered(self, size: int) -> None:
        """Send the first `size` buffered bytes as the next part."""
        with memoryview(self._buffer) as view:
            data = bytes(view[:size])
        self._parts.append(await self._send_part(data, len(self._parts) + 1))
        del self._buffer[:size]

    async def _send_part(self, data: bytes, number: int) -> _Part:
        if number > MAX_PARTS:
            raise StorageError(
                f"{self._path}: more than {MAX_PARTS} parts; raise the s3 part_size"
                f" (now {self._driver.part_size} bytes) for objects this large"
            )
        s3 = await self._s3()
        with _map_errors(self._path):
            if self._upload_id is None:
                started = await s3.create_multipart_upload(Bucket=self.bucket, Key=self._key)
                self._upload_id = started["UploadId"]
            response = await s3.upload_part(
                Bucket=self.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
        return _Part(number, response["ETag"], len(data))


@functools.cache
def _loader() -> Loader:
    """botocore's service models, parsed once per process (~0.2 s per session otherwise)."""
    return create_loader()


def _decode_state(path: str, state: bytes) -> tuple[str | None, list[_Part], bytes]:
    try:
        if not state.startswith(_STATE_MAGIC):
            raise ValueError("bad magic")
        start = len(_STATE_MAGIC) + _STATE_HEADER.size
        (length,) = _STATE_HEADER.unpack_from(state, len(_STATE_MAGIC))
        header = json.loads(state[start : start + length])
        parts = [_Part(int(n), str(etag), int(size)) for n, etag, size in header["parts"]]
        upload_id = header["upload_id"]
        if upload_id is not None and not isinstance(upload_id, str):
            raise ValueError("bad upload id")
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise StorageError(f"unreadable writer state for {path!r}: {exc}") from exc
    return upload_id, parts, state[start + length :]


def _past(page: dict[str, Any], key: str) -> bool:
    """Whether a listing page has gone beyond `key` (pages come in key order)."""
    keys = [item["Key"] for item in page.get("Contents", [])]
    keys += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
    return any(k > key for k in keys)
