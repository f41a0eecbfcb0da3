"""Objects in a Google Cloud Storage bucket (or a GCS emulator), over GCS's JSON API.

The object at `a/b` is the object `<prefix>a/b`; prefixes are name prefixes ending in
`/`. Metadata calls, listings, simple uploads, copies and deletes go through
gcloud-aio-storage; streamed reads and resumable-upload chunks use the same aiohttp
session directly, since the library reads whole bodies and sends whole files.
Credentials come from gcloud-aio-auth: a service-account key file, else Application
Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's own file, then the
metadata server, which is how GKE workload identity hands out tokens); `anonymous`
sends none (emulators; a key file then only signs URLs). Idempotent calls are
retried with bounded backoff on throttling, 5xx and dropped connections, and every
call has connect/read timeouts, so a dead endpoint is a BackendUnavailable, never a
hang.

- `put` is one media upload (atomic: an object appears whole); `if_absent` adds the
  precondition `ifGenerationMatch=0`, which GCS enforces across all clients (412).
- Writers (upload sessions) are resumable uploads. Their bookkeeping lives in one
  state object next to the key, `<key>.writer~` (names ending in `~` are reserved by
  the contract, so it can't collide with an object and `list`/`walk` hide it):

      b"arca-gcs-writer 1\\n" + u32 header length + JSON header + tail bytes

  The header names the session URI (null until the first chunk is sent) and the
  offset GCS has persisted; the tail is the bytes after it, fewer than the 256 KiB
  every chunk but the last must be a multiple of. A writer holds at most one chunk
  in memory and sends `chunk_size` bytes whenever that much is buffered. `close()`
  sends the whole 256 KiB multiples it holds and rewrites the state (offset and tail
  together, in one upload, so they always agree); `writer(path, append=True)` reads it
  back from any process, asks GCS how much the session has persisted and carries on.
  A session holding more than the state says (a process killed after sending a chunk
  it never recorded) cannot be rewound: the writer then reports GCS's size, and the
  registry, unable to read those bytes back, asks the client to restart the upload
  (on S3 such parts are overwritten instead). `commit()` sends the tail as the final
  chunk, which makes the object appear whole (with no session yet: one media
  upload), then deletes the state; `cancel()` and `delete()` cancel the session.
- `url_for` signs a V4 URL for redirects: locally with the key file's private key,
  else through the IAM signBlob API as `signing_service_account` (workload identity).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import functools
import hashlib
import json
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit

import aiohttp
import google_crc32c
from gcloud.aio.auth import IamClient, Token
from gcloud.aio.storage import Blob, Storage

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
from arca.storage.options import DriverOptions, OptionError, check_object_store

GRANULARITY = 256 << 10
"""Every resumable chunk but the last must be a multiple of this."""
MAX_CHUNK_SIZE = 1 << 30
WRITER_SUFFIX = ".writer~"
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]

_DELETE_CONCURRENCY = 16
_STATE_MAGICS = (b"arca-gcs-writer 1\n", b"arca-gcs-writer 2\n")
_STATE_MAGIC = _STATE_MAGICS[-1]
_MARKS = 8
"""Sizes (with their crc32c) a writer remembers it was saved at: the registry cuts an
upload back to the size it last recorded, which is one of the last two."""
_STATE_HEADER = struct.Struct(">I")
_RANGE = re.compile(r"bytes=0-(\d+)")
_CONTENT_RANGE_TOTAL = re.compile(r"bytes [^/]*/(\d+)")
_T = TypeVar("_T")


class _Retryable(Exception):
    """A throttled, failed or dropped call that is safe to send again."""


@contextlib.contextmanager
def _map_errors(path: str, offset: int = 0) -> Iterator[None]:
    """The one place where aiohttp errors and GCS statuses become the contract's exceptions."""
    try:
        yield
    except aiohttp.ClientResponseError as exc:
        status = exc.status
        detail = f"{status} {exc.message}"[:500]
        if status == 404:
            raise PathNotFound(path) from exc
        if status == 412:
            raise AlreadyExists(path) from exc
        if status == 416:
            raise InvalidOffset(path, offset) from exc
        if status in (401, 403, 429) or status >= 500:
            raise BackendUnavailable(f"GCS refused the request for {path!r}: {detail}") from exc
        raise StorageError(f"GCS error for {path!r}: {detail}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # OSError: refused, DNS…
        raise BackendUnavailable(f"GCS endpoint unavailable ({path!r}): {exc}") from exc


def _check(response: aiohttp.ClientResponse, *ok: int) -> None:
    """Raise ClientResponseError unless `response.status` is one of `ok`."""
    if response.status not in ok:
        raise aiohttp.ClientResponseError(
            response.request_info,
            response.history,
            status=response.status,
            message=response.reason or "",
            headers=response.headers,
        )


@dataclass(frozen=True)
class GCSOptions(DriverOptions):
    """`[storage.gcs]`: every key is documented in docs/storage.md."""

    bucket: str
    prefix: str = ""
    endpoint_url: str = DEFAULT_ENDPOINT
    credentials_file: str | None = None
    anonymous: bool = False
    redirect: bool = False
    public_endpoint_url: str | None = None
    signing_service_account: str | None = None
    chunk_size: int = 16 << 20
    max_attempts: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.bucket:
            raise OptionError("bucket", "is required")
        size = self.chunk_size
        if size % GRANULARITY or not GRANULARITY <= size <= MAX_CHUNK_SIZE:
            raise OptionError(
                "chunk_size", f"must be a multiple of {GRANULARITY} bytes, at most {MAX_CHUNK_SIZE}"
            )
        check_object_store(self, ("endpoint_url", "public_endpoint_url"), "object")


class GCSDriver(Driver):
    name = "gcs"
    chunk_min_length = GRANULARITY
    options_type = GCSOptions

    def __init__(self, bucket: str, **options: Any) -> None:
        """`options` are GCSOptions' fields, checked there."""
        settings = GCSOptions(bucket, **options)
        credentials_file = settings.credentials_file
        self._service_data: dict[str, Any] = {}
        if credentials_file is not None:
            try:
                self._service_data = json.loads(Path(credentials_file).read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise OptionError("credentials_file", f"cannot be read: {exc}") from exc
        prefix = settings.prefix.strip("/")
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.chunk_size = settings.chunk_size
        self.redirect = settings.redirect
        self.max_attempts = settings.max_attempts
        self._endpoint = settings.endpoint_url.rstrip("/")
        self._public = (settings.public_endpoint_url or self._endpoint).rstrip("/")
        self._credentials_file = credentials_file
        self._anonymous = settings.anonymous
        self._signer = settings.signing_service_account
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
        )
        self._read_timeout = settings.read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._storage: Storage | None = None
        self._token: Token | None = None

    # -- reading -----------------------------------------------------------------------

    async def get(self, path: str) -> bytes:
        return b"".join([piece async for piece in self._stream(path, self._key(path))])

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
        end = "" if length is None else str(offset + length - 1)
        try:
            async for piece in self._stream(path, key, f"bytes={offset}-{end}", offset):
                yield piece
        except InvalidOffset:
            # GCS refuses a range starting at the end; the contract yields nothing there.
            if (await self.stat(path)).size != offset:
                raise

    async def stat(self, path: str) -> ObjectInfo:
        key = self._key(path)
        storage = self._client()
        item = await self._retry(path, lambda: storage.download_metadata(self.bucket, key))
        return _info(path, item)

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        base = self._key(prefix) + "/"
        params = {"prefix": base, "delimiter": "/"}
        if start_after is not None:
            # Every name after `start_after` has a key at or after this one; some keys
            # after it still belong to earlier names: filtered below.
            params["startOffset"] = base + start_after
        async for name in in_name_order(self._children(prefix, base, params)):
            if start_after is None or name > start_after:
                yield name

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = self._key(prefix) + "/"
        async for page in self._pages(prefix, {"prefix": base}):
            for item in page.get("items", []):
                path = item["name"][len(self.prefix) :]
                if is_object_path(path):
                    yield _info(path, item)

    # -- writing -----------------------------------------------------------------------

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        await self._upload(path, self._key(path), data, if_absent=if_absent)

    async def delete(self, path: str) -> None:
        key = self._key(path)
        mine: list[str] = []
        async for page in self._pages(path, {"prefix": key}):
            for item in page.get("items", []):
                rest = item["name"][len(key) :]
                if rest in ("", WRITER_SUFFIX) or rest.startswith("/"):
                    mine.append(item["name"])
        if not mine:
            raise PathNotFound(path)
        storage = self._client()
        limit = asyncio.Semaphore(_DELETE_CONCURRENCY)

        async def remove(name: str) -> None:
            async with limit:
                if name.endswith(WRITER_SUFFIX):
                    await self._cancel_writer(path, name)
                with contextlib.suppress(PathNotFound):
                    await self._retry(path, lambda: storage.delete(self.bucket, name))

        await asyncio.gather(*(remove(name) for name in mine))

    async def delete_if(self, path: str, expected: bytes) -> bool:
        """Read the object's generation, then its bytes of exactly that generation;
        if they are `expected`, delete with `ifGenerationMatch` on it: GCS refuses the
        delete (412) once another write has replaced the object."""
        key = self._key(path)
        storage = self._client()
        try:
            item = await self._retry(path, lambda: storage.download_metadata(self.bucket, key))
            generation = str(item["generation"])
            if int(item["size"]) != len(expected):
                return False
            stream = self._stream(path, key, generation=generation)
            if b"".join([piece async for piece in stream]) != expected:
                return False
            await self._retry(
                path,
                lambda: storage.delete(self.bucket, key, params={"ifGenerationMatch": generation}),
            )
        except (PathNotFound, AlreadyExists):  # gone, or replaced (412): not ours to delete
            return False
        return True

    async def move(self, source: str, destination: str) -> None:
        source_key, destination_key = self._key(source), self._key(destination)
        storage = self._client()

        async def copy() -> Any:
            # rewriteTo, repeated with its token until done: any size, server-side.
            return await storage.copy(
                self.bucket,
                source_key,
                self.bucket,
                new_name=destination_key,
                timeout=int(self._read_timeout),
            )

        await self._retry(source, copy)
        await self._retry(source, lambda: storage.delete(self.bucket, source_key))

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self._key(path)
        if not append:
            writer = _GCSWriter(self, path, key, _WriterState(None, 0, 0, 0, (), b""))
            await writer.save()
            return writer
        raw = b"".join([piece async for piece in self._stream(path, key + WRITER_SUFFIX)])
        state = _decode_state(path, raw)
        writer = _GCSWriter(self, path, key, state)
        if state.session is not None:
            persisted = await self._persisted(path, state.session)
            if persisted is None:
                raise PathNotFound(path)  # the session expired or was finished elsewhere
            if persisted < state.offset:
                raise StorageError(f"GCS lost bytes of the upload session of {path!r}")
            # More than the state says: a writer killed after sending bytes it never
            # recorded. They can't be rewound; the next writes are checked against them.
            writer._offset = persisted
            writer._settle()
        return writer

    # -- the rest of the contract ------------------------------------------------------

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        if not self.redirect:
            return None
        key = self._key(path)
        with _map_errors(path):
            return await self._signed_url(key, expires)

    async def check(self) -> None:
        storage = self._client()
        try:
            await self._retry(self.bucket, lambda: storage.get_bucket_metadata(self.bucket))
        except BackendUnavailable:
            raise
        except StorageError as exc:
            raise BackendUnavailable(f"bucket {self.bucket!r} is not usable: {exc}") from exc

    async def close(self) -> None:
        session, self._session = self._session, None
        self._storage = None
        if self._token is not None:
            with contextlib.suppress(Exception):
                await self._token.close()
            self._token = None
        if session is not None:
            await session.close()

    # -- helpers -----------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return self.prefix + path  # checked by the wrapper (storage/checked.py)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False)
            self._storage = None
        return self._session

    def _client(self) -> Storage:
        """gcloud-aio-storage on this driver's session, created on first use."""
        session = self._http()
        if self._storage is None:
            if self._token is None and not self._anonymous:
                self._token = Token(
                    service_file=self._credentials_file, session=cast(Any, session), scopes=SCOPES
                )
            self._storage = Storage(
                token=self._token,
                session=cast(Any, session),
                api_root=self._endpoint,
                api_is_dev=self._anonymous,
            )
        return self._storage

    async def _headers(self) -> dict[str, str]:
        self._client()
        if self._token is None:
            return {}
        return {"Authorization": f"Bearer {await self._token.get()}"}

    def _object_url(self, key: str) -> str:
        return (
            f"{self._endpoint}/storage/v1/b/{quote(self.bucket, safe='')}/o/{quote(key, safe='')}"
        )

    def _upload_timeout(self, size: int) -> int:
        # gcloud-aio's timeouts are totals: allow a slow 8 MiB/s on top of the read timeout.
        return int(self._read_timeout + size / (8 << 20))

    async def _retry(
        self, path: str, call: Callable[[], Awaitable[_T]], *, idempotent: bool = True
    ) -> _T:
        """`call()`, with its errors mapped; again with backoff while it may succeed."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with _map_errors(path):
                    return await call()
            except BackendUnavailable as exc:
                cause = exc.__cause__
                transient = not isinstance(cause, aiohttp.ClientResponseError) or (
                    cause.status == 429 or cause.status >= 500
                )
                if not idempotent or not transient or attempt >= self.max_attempts:
                    raise
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def _upload(self, path: str, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """One media upload of `data` to `key`, create-only with `if_absent`."""
        storage = self._client()
        parameters = {"ifGenerationMatch": "0"} if if_absent else {}

        # An empty object goes as a multipart upload (metadata + no bytes):
        # gcp-storage-emulator drops the connection on an empty media upload.
        metadata = None if data else {"contentType": "application/octet-stream"}

        async def upload() -> Any:
            return await storage.upload(
                self.bucket,
                key,
                data,
                content_type="application/octet-stream",
                parameters=dict(parameters),
                metadata=metadata,
                force_resumable_upload=False,
                timeout=self._upload_timeout(len(data)),
            )

        # Retried only without a precondition: a retry of a create-only upload that
        # landed would wrongly report AlreadyExists.
        await self._retry(path, upload, idempotent=not if_absent)

    async def _stream(
        self,
        path: str,
        key: str,
        byte_range: str | None = None,
        offset: int = 0,
        *,
        generation: str | None = None,
    ) -> AsyncIterator[bytes]:
        """One GET of the object's media (of one `generation`, if given), in CHUNK_SIZE
        pieces."""
        headers = await self._headers()
        if byte_range is not None:
            headers["Range"] = byte_range
        params = {"alt": "media"}
        if generation is not None:
            params["generation"] = generation
        session = self._http()

        async def start() -> aiohttp.ClientResponse:
            response = await session.get(self._object_url(key), params=params, headers=headers)
            if response.status not in (200, 206):
                response.release()
                _check(response, 200, 206)
            return response

        with _map_errors(path, offset):
            response = await self._retry(path, start)
            try:
                if byte_range is not None and response.status == 206:
                    # Some emulators answer a range past the end with an empty 206.
                    total = _CONTENT_RANGE_TOTAL.match(response.headers.get("Content-Range", ""))
                    if total is not None and offset > int(total.group(1)):
                        raise InvalidOffset(path, offset)
                pieces: list[bytes] = []
                buffered = 0
                while True:
                    piece = await response.content.read(CHUNK_SIZE - buffered)
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
                response.close()

    async def _pages(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """objects.list pages."""
        storage = self._client()
        params = dict(params)
        while True:
            page = await self._retry(
                path, functools.partial(storage.list_objects, self.bucket, params=dict(params))
            )
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    async def _children(self, path: str, base: str, params: dict[str, str]) -> AsyncIterator[str]:
        """Names under `base` in key order (a prefix sorts as `name/`), reserved ones too."""
        async for page in self._pages(path, params):
            keys = [item["name"] for item in page.get("items", [])]
            keys += page.get("prefixes", [])
            for key in sorted(keys):  # code point order == GCS's UTF-8 byte order
                name = key[len(base) :].rstrip("/")
                if name:
                    yield name

    async def _start_session(self, path: str, key: str) -> str:
        """A resumable upload session for `key`; its URI works from any process."""
        headers = await self._headers()
        headers["X-Upload-Content-Type"] = "application/octet-stream"
        session = self._http()
        url = f"{self._endpoint}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o"

        async def start() -> str:
            async with session.post(
                url,
                params={"uploadType": "resumable", "name": key},
                headers=headers,
                json={"name": key},
            ) as response:
                _check(response, 200, 201)
                location = response.headers.get("Location")
            if not location:
                raise StorageError(f"GCS gave no session URI for {path!r}")
            return location

        return await self._retry(path, start)

    async def _persisted(self, path: str, session_uri: str) -> int | None:
        """Bytes the session has persisted; None if it is gone or already finished."""
        headers = await self._headers()
        headers["Content-Range"] = "bytes */*"
        session = self._http()

        async def query() -> int | None:
            async with session.put(session_uri, headers=headers, data=b"") as response:
                if response.status in (200, 201, 404, 410, 499):
                    return None
                _check(response, 308)
                persisted = _RANGE.fullmatch(response.headers.get("Range", ""))
                return 0 if persisted is None else int(persisted.group(1)) + 1

        return await self._retry(path, query)

    async def _send_chunk(
        self,
        path: str,
        session_uri: str,
        start: int,
        data: bytes | memoryview,
        total: int | None,
        crc32c: int | None = None,
    ) -> tuple[int, dict[str, Any] | None]:
        """Send `data` at `start` (`total`: this is the last chunk, `crc32c` the whole
        object's, for GCS to check); returns the offset GCS has persisted after it (all of
        `data`, or less: the caller sends the rest) and, once finished, the object."""
        headers = await self._headers()
        if crc32c is not None:
            headers["X-Goog-Hash"] = f"crc32c={_crc32c_text(crc32c)}"
        if data:
            end = start + len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{'*' if total is None else total}"
        else:
            headers["Content-Range"] = f"bytes */{total}"
        session = self._http()
        timeout = aiohttp.ClientTimeout(
            sock_connect=self._timeout.sock_connect, total=self._upload_timeout(len(data))
        )
        with _map_errors(path):
            async with session.put(
                session_uri, headers=headers, data=data, timeout=timeout
            ) as response:
                if total is not None and response.status in (200, 201):
                    try:
                        item = await response.json(content_type=None)
                    except ValueError:
                        item = None
                    return total, item if isinstance(item, dict) else None
                _check(response, 308)
                persisted = _RANGE.fullmatch(response.headers.get("Range", ""))
        return (0 if persisted is None else int(persisted.group(1)) + 1), None

    async def _verify(self, path: str, key: str, item: dict[str, Any], crc32c: int) -> None:
        """Compare a finished upload's crc32c with what was written; on a mismatch (bytes
        another writer sent to the session) delete that generation and refuse."""
        stored = item.get("crc32c")
        if stored is None or stored == _crc32c_text(crc32c):
            return
        storage = self._client()
        generation = item.get("generation")
        params = {} if generation is None else {"ifGenerationMatch": str(generation)}
        with contextlib.suppress(PathNotFound, AlreadyExists):
            await self._retry(path, lambda: storage.delete(self.bucket, key, params=params))
        raise StorageError(
            f"GCS finished {path!r} with crc32c {stored}, not the {_crc32c_text(crc32c)}"
            " of the bytes written: the session held other bytes; restart the upload"
        )

    async def _cancel_session(self, path: str, session_uri: str) -> None:
        """Cancel a resumable session (best effort: unfinished sessions expire in a week;
        gcp-storage-emulator answers 501 to this)."""
        headers = await self._headers()
        session = self._http()
        with contextlib.suppress(StorageError), _map_errors(path):
            async with session.delete(session_uri, headers=headers) as response:
                response.release()

    async def _cancel_writer(self, path: str, state_key: str) -> None:
        try:
            raw = b"".join([piece async for piece in self._stream(path, state_key)])
            session = _decode_state(path, raw).session
        except (PathNotFound, StorageError):
            return
        if session is not None:
            await self._cancel_session(path, session)

    async def _signed_url(self, key: str, expires: int) -> str:
        """A V4 signed GET URL (the algorithm of gcloud-aio-storage's Blob.get_signed_url,
        which always signs for storage.googleapis.com over https)."""
        if not 1 <= expires <= 604800:
            raise StorageError("gcs: signed URLs last from 1 second to 7 days")
        public = urlsplit(self._public)
        now = datetime.datetime.now(datetime.UTC)
        datestamp = now.strftime("%Y%m%d")
        timestamp = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{datestamp}/auto/storage/goog4_request"
        email = self._service_data.get("client_email") or self._signer
        if not email:
            raise StorageError(
                "gcs: redirect needs a credentials_file with a private key or a"
                " signing_service_account to sign URLs as"
            )
        path = f"{public.path.rstrip('/')}/{self.bucket}/{quote(key, safe='/~')}"
        query = {
            "X-Goog-Algorithm": "GOOG4-RSA-SHA256",
            "X-Goog-Credential": f"{email}/{scope}",
            "X-Goog-Date": timestamp,
            "X-Goog-Expires": str(expires),
            "X-Goog-SignedHeaders": "host",
        }
        canonical_query = "&".join(
            f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items())
        )
        canonical = "\n".join(
            ["GET", path, canonical_query, f"host:{public.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
        )
        to_sign = "\n".join(
            ["GOOG4-RSA-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        private_key = self._service_data.get("private_key")
        if isinstance(private_key, str):
            signature = Blob.get_pem_signature(to_sign, private_key)
        else:
            iam = IamClient(token=await self._iam_token(), session=cast(Any, self._http()))
            signed = await iam.sign_blob(to_sign, service_account_email=email)
            signature = base64.b64decode(signed["signedBlob"])
        hex_signature = binascii.hexlify(signature).decode()
        return (
            f"{public.scheme}://{public.netloc}{path}?{canonical_query}"
            f"&X-Goog-Signature={hex_signature}"
        )

    async def _iam_token(self) -> Token:
        self._client()
        if self._token is None:
            raise StorageError("gcs: an anonymous driver cannot sign through IAM")
        return self._token


class _GCSWriter(FileWriter):
    """A resumable upload session with its offset, tail and checksum kept in `<key>.writer~`.

    Three offsets: `_offset`, what the GCS session has persisted; `_at`, where the
    buffer starts (bytes before it are folded into `_crc`); and `size`, `_at` plus the
    buffer. Normally `_at == _offset`. After a writer was killed having sent bytes it
    never recorded, or a truncate below `_offset`, the session is ahead (`_at <
    _offset`, empty buffer): the next bytes written are not sent again (a session
    cannot be rewound) but folded into the checksum, and `commit()` compares it with the
    crc32c GCS computed of the finished object, so bytes that differ from the ones
    written are never finalised silently.
    """

    def __init__(self, driver: GCSDriver, path: str, key: str, state: _WriterState) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._session = state.session
        self._offset = state.offset
        self._at = state.at
        self._crc = state.crc
        self._marks = list(state.marks)
        self._buffer = bytearray(state.tail)
        self._saved = True
        self._ended = False

    @property
    def size(self) -> int:
        return self._at + len(self._buffer)

    async def write(self, data: bytes) -> None:
        """Buffer `data`, sending each chunk as it fills; the buffer never exceeds a chunk.

        If sending fails, the bytes of this call not yet sent are dropped again, so
        `size` says what was accepted (for writes up to a chunk: all of it or nothing).
        """
        self._check_open()
        chunk_size = self._driver.chunk_size
        rest = memoryview(data)
        if rest:
            self._saved = False
        ahead = self._offset - self._at
        if ahead > 0:  # bytes the session already holds at these offsets
            taken = rest[:ahead]
            rest = rest[len(taken) :]
            self._fold(taken)
        while rest:
            taken = rest[: chunk_size - len(self._buffer)]
            rest = rest[len(taken) :]
            self._buffer += taken
            if len(self._buffer) == chunk_size:
                try:
                    await self._send(chunk_size)
                except BaseException:
                    # What GCS persisted stays counted; the rest of this call is dropped.
                    self._keep(0, max(0, len(self._buffer) - len(taken)))
                    raise

    async def truncate(self, size: int) -> None:
        """Cut inside the buffered tail, or back to a size the writer was saved at
        (its checksum is remembered there). The session keeps the bytes after `size`:
        the next bytes written are checked against them at `commit()`, not sent."""
        self._check_open()
        if not 0 <= size <= self.size:
            raise InvalidOffset(self._path, size)
        if size >= self._at:
            self._keep(0, size - self._at)
        else:
            crc = dict(self._marks).get(size)
            if crc is None:
                raise InvalidOffset(self._path, size)
            self._at, self._crc, self._buffer = size, crc, bytearray()
        await self.save()

    async def close(self) -> None:
        if self._ended:
            return
        try:
            whole = len(self._buffer) - len(self._buffer) % GRANULARITY
            if whole:
                await self._send(whole)
            if not self._saved:
                await self.save()
        finally:
            self._end()

    async def commit(self) -> None:
        self._check_open()
        driver = self._driver
        data = bytes(self._buffer)
        if self._session is None:
            await driver._upload(self._path, self._key, data)
        else:
            total = self.size
            if total < self._offset:
                raise StorageError(
                    f"GCS holds {self._offset} bytes of {self._path!r}, more than its"
                    f" {total}: an upload session cannot be cut"
                )
            expected = None if self._crc is None else _crc32c(self._crc, data)
            persisted, item = await driver._send_chunk(
                self._path, self._session, self._offset, data, total, expected
            )
            if persisted != total:
                raise StorageError(f"GCS did not finish the upload of {self._path!r}")
            self._end()  # the session is finished: nothing more can go to it
            if expected is not None and item is not None:
                await driver._verify(self._path, self._key, item, expected)
        storage = driver._client()
        with contextlib.suppress(PathNotFound):
            await driver._retry(
                self._path, lambda: storage.delete(driver.bucket, self._key + WRITER_SUFFIX)
            )
        self._end()

    async def cancel(self) -> None:
        self._check_open()
        self._end()
        driver = self._driver
        if self._session is not None:
            await driver._cancel_session(self._path, self._session)
        storage = driver._client()
        with contextlib.suppress(PathNotFound):
            await driver._retry(
                self._path, lambda: storage.delete(driver.bucket, self._key + WRITER_SUFFIX)
            )

    async def save(self) -> None:
        """Write the state object: the session, its offsets, checksums and the tail."""
        if self._crc is not None:
            size = self.size
            marks = [mark for mark in self._marks if mark[0] != size]
            self._marks = [*marks, (size, _crc32c(self._crc, self._buffer))][-_MARKS:]
        state = _WriterState(
            self._session,
            self._offset,
            self._at,
            self._crc,
            tuple(self._marks),
            bytes(self._buffer),
        )
        await self._driver._upload(self._path, self._key + WRITER_SUFFIX, state.encode())
        self._saved = True

    def _check_open(self) -> None:
        if self._ended:
            raise StorageError(f"writer for {self._path} is closed")

    def _end(self) -> None:
        self._ended = True
        self._buffer = bytearray()

    def _fold(self, data: bytes | bytearray | memoryview) -> None:
        """Count `data` as the next bytes of the object without buffering them."""
        if self._crc is not None:
            self._crc = _crc32c(self._crc, data)
        self._at += len(data)

    def _keep(self, start: int, stop: int) -> None:
        """Cut the buffer to `[start:stop]`: in place, or as a copy while a view of it is
        still held (by a send that failed half way)."""
        try:
            del self._buffer[stop:]
            del self._buffer[:start]
        except BufferError:
            self._buffer = self._buffer[start:stop]

    def _settle(self) -> None:
        """Fold the buffered bytes the session now holds out of the buffer."""
        held = min(self._offset - self._at, len(self._buffer))
        if held > 0:
            with memoryview(self._buffer) as view:
                self._fold(view[:held])
            self._keep(held, len(self._buffer))

    async def _send(self, size: int) -> None:
        """Send the first `size` buffered bytes (a multiple of 256 KiB), all of them."""
        driver = self._driver
        if self._session is None:
            self._session = await driver._start_session(self._path, self._key)
        end = self._at + size
        while self._offset < end:
            # Sent from the buffer itself (no copy: one chunk in memory, not two); the
            # views are released before the buffer is cut.
            with memoryview(self._buffer) as view, view[: end - self._at] as data:
                persisted, _ = await driver._send_chunk(
                    self._path, self._session, self._offset, data, None
                )
            if persisted <= self._offset:
                raise StorageError(f"GCS persisted nothing of a chunk of {self._path!r}")
            # More than was sent: another writer's bytes, checked at commit().
            self._offset = persisted
            self._settle()


@dataclass(frozen=True)
class _WriterState:
    """What `<key>.writer~` holds (see _GCSWriter for the offsets)."""

    session: str | None
    offset: int
    at: int
    crc: int | None
    """crc32c of the first `at` bytes; None in a state written before checksums."""
    marks: tuple[tuple[int, int], ...]
    """(size, crc32c) at the last saves: sizes a writer can be cut back to."""
    tail: bytes

    def encode(self) -> bytes:
        header = json.dumps(
            {
                "session": self.session,
                "offset": self.offset,
                "at": self.at,
                "crc": self.crc,
                "marks": [list(mark) for mark in self.marks],
            }
        ).encode()
        return _STATE_MAGIC + _STATE_HEADER.pack(len(header)) + header + self.tail


def _crc32c(crc: int, data: bytes | bytearray | memoryview) -> int:
    return int(google_crc32c.extend(crc, bytes(data)))


def _crc32c_text(crc: int) -> str:
    """A crc32c as GCS writes it: base64 of its four big-endian bytes."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _info(path: str, item: dict[str, Any]) -> ObjectInfo:
    updated = datetime.datetime.fromisoformat(item["updated"].replace("Z", "+00:00"))
    return ObjectInfo(path, int(item["size"]), updated.timestamp())


def _decode_state(path: str, state: bytes) -> _WriterState:
    try:
        version = next(
            (n for n, magic in enumerate(_STATE_MAGICS, 1) if state.startswith(magic)), None
        )
        if version is None:
            raise ValueError("bad magic")
        start = len(_STATE_MAGIC) + _STATE_HEADER.size
        (length,) = _STATE_HEADER.unpack_from(state, len(_STATE_MAGIC))
        header = json.loads(state[start : start + length])
        tail = state[start + length :]
        session = header["session"]
        offset = int(header["offset"])
        if session is not None and not isinstance(session, str):
            raise ValueError("bad session")
        if version == 1:  # written before checksums: the tail follows the offset
            return _WriterState(session, offset, offset, None, (), tail)
        crc = header["crc"]
        marks = tuple((int(size), int(value)) for size, value in header["marks"])
        at = int(header["at"])
        if at > offset or (tail and at != offset):
            raise ValueError("a tail must start at the persisted offset")
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise StorageError(f"unreadable writer state for {path!r}: {exc}") from exc
    return _WriterState(session, offset, at, None if crc is None else int(crc), marks, tail)
