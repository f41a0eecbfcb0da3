"""Objects as block blobs in one Azure Blob Storage container (or Azurite).

The object at `a/b` is the blob `<prefix>a/b`; prefixes are name prefixes ending in `/`.
Every call goes through one async `azure-storage-blob` client per driver (aiohttp
underneath), with a bounded exponential retry and connect/read timeouts, so a dead
endpoint is a BackendUnavailable, never a hang.

- `put` is one Put Blob (atomic: a blob becomes visible whole); `if_absent` sends
  `If-None-Match: *`, which Azure enforces across every client of the account.
- Writers (upload sessions) stage blocks. Uncommitted blocks belong to a blob name, and
  committing a block list discards every other uncommitted block of that name, so two
  writers of one path would destroy each other's work: each writer stages on a blob
  name of its own, `<key>.<token>.blocks~`, and its state lives in `<key>.writer~`
  (names ending in `~` are reserved by the contract: they can't collide with an
  object and `list`/`walk` hide them):

      {"v": 1, "token": "<hex>", "blocks": [[block id, size], ...]}

  A writer buffers at most `block_size` bytes and stages a block whenever that much is
  buffered. `close()` stages what is buffered (Azure blocks have no minimum size)
  and rewrites the state, so `writer(path, append=True)` from any process carries on
  from exactly what was closed. Block ids are unique to each writer instance (a
  random 8-hex-digit prefix and a counter, one fixed length), so blocks a crashed
  writer staged after its last `close()` are simply not in any list that is
  committed, and two processes writing one session at once can never overwrite each
  other's blocks: a commit names only blocks whose bytes its own process handled (as
  S3's part ETags do). `commit()` commits the block list on the staging name, copies that blob to
  the key (a server-side copy within the account), and deletes the staging blob and
  the state; `cancel()` and `delete()` drop the state and discard the staged blocks.
- `url_for` signs a read-only SAS URL for redirects: with the account key when the
  driver has one, else with a user delegation key (managed identity, workload
  identity or any Entra ID credential with the Storage Blob Delegator role).
- Credentials: a connection string, or `account_url` with `account_key`, or
  `account_url` alone, which uses azure-identity's DefaultAzureCredential (managed
  identity, workload identity, environment, Azure CLI).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobSasPermissions, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ExponentialRetry

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

WRITER_SUFFIX = ".writer~"
BLOCKS_SUFFIX = ".blocks~"
MIN_BLOCK_SIZE = 1 << 20
MAX_BLOCK_SIZE = 4000 << 20
"""Azure's largest block (service version 2019-12-12 and later)."""
MAX_BLOCKS = 50_000
"""Committed blocks per blob."""

_DELETE_CONCURRENCY = 16
_COPY_POLL = 0.05
_STATE_VERSION = 1
_UNAVAILABLE_CODES = frozenset(
    {
        "ContainerNotFound", "AuthenticationFailed", "AuthorizationFailure",
        "AuthorizationPermissionMismatch", "AccountIsDisabled", "InsufficientAccountPermissions",
        "ServerBusy", "OperationTimedOut", "InternalError",
    }
)  # fmt: skip


@contextlib.contextmanager
def _map_errors(path: str, offset: int = 0) -> Iterator[None]:
    """The one place where azure-core and aiohttp errors become the contract's exceptions."""
    try:
        yield
    except HttpResponseError as exc:
        code = str(getattr(exc, "error_code", "") or "")
        status = exc.status_code or 0
        detail = f"{status} {code} {exc.reason or ''}".strip()
        if code in _UNAVAILABLE_CODES or status in (401, 403) or status >= 500:
            raise BackendUnavailable(f"Azure refused the request for {path!r}: {detail}") from exc
        if isinstance(exc, ClientAuthenticationError):
            raise BackendUnavailable(f"Azure credentials refused for {path!r}: {exc}") from exc
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            raise PathNotFound(path) from exc
        if isinstance(exc, ResourceExistsError | ResourceModifiedError) or status in (409, 412):
            raise AlreadyExists(path) from exc
        if status == 416 or code == "InvalidRange":
            raise InvalidOffset(path, offset) from exc
        raise StorageError(f"Azure error for {path!r}: {detail}") from exc
    except ClientAuthenticationError as exc:  # a credential that could not get a token
        raise BackendUnavailable(f"Azure credentials refused for {path!r}: {exc}") from exc
    except (ServiceRequestError, ServiceResponseError, aiohttp.ClientError, OSError) as exc:
        raise BackendUnavailable(f"Azure endpoint unavailable ({path!r}): {exc}") from exc
    except AzureError as exc:
        raise StorageError(f"Azure error for {path!r}: {exc}") from exc


@dataclass(frozen=True)
class AzureOptions(DriverOptions):
    """`[storage.azure]`: every key is documented in docs/storage.md."""

    container: str
    prefix: str = ""
    connection_string: str | None = secret()
    account_url: str | None = None
    account_key: str | None = secret()
    managed_identity_client_id: str | None = None
    redirect: bool = False
    public_account_url: str | None = None
    block_size: int = 8 << 20
    max_attempts: int = 3
    connect_timeout: float = 3.0
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.container:
            raise OptionError("container", "is required")
        if (self.connection_string is None) == (self.account_url is None):
            raise OptionError("connection_string", "or account_url: give exactly one of them")
        if self.account_key is not None and self.account_url is None:
            raise OptionError("account_key", "goes with account_url")
        if self.managed_identity_client_id is not None and (
            self.account_key or self.connection_string
        ):
            raise OptionError("managed_identity_client_id", "is for account_url without a key")
        if not MIN_BLOCK_SIZE <= self.block_size <= MAX_BLOCK_SIZE:
            raise OptionError(
                "block_size", f"must be between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE} bytes"
            )
        check_object_store(self, ("account_url", "public_account_url"), "blob")


class AzureBlobDriver(Driver):
    name = "azure"
    options_type = AzureOptions

    def __init__(self, container: str, **options: Any) -> None:
        """`options` are AzureOptions' fields, checked there."""
        settings = AzureOptions(container, **options)
        prefix = settings.prefix.strip("/")
        self.container = container
        self.prefix = prefix + "/" if prefix else ""
        self.block_size = settings.block_size
        self.redirect = settings.redirect
        max_attempts = settings.max_attempts
        self._options: dict[str, Any] = {
            "retry_policy": ExponentialRetry(
                initial_backoff=0, increment_base=2, retry_total=max_attempts - 1,
                random_jitter_range=1,
            ),
            "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.read_timeout,
            # Streamed reads hand over up to this much per piece (azure-core's default: 4 KiB).
            "connection_data_block_size": CHUNK_SIZE,
        }  # fmt: skip
        self._connection_string = settings.connection_string
        self._account_url = settings.account_url
        self._account_key = settings.account_key
        self._managed_identity_client_id = settings.managed_identity_client_id
        self._public_account_url = settings.public_account_url
        self._service: BlobServiceClient | None = None
        self._credential: Any = None
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_expiry = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        self._lock = asyncio.Lock()

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
        pieces: list[bytes] = []
        buffered = 0
        try:
            async for piece in self._stream(path, key, f"bytes={offset}-{end}", offset):
                pieces.append(piece)
                buffered += len(piece)
                if buffered >= CHUNK_SIZE:
                    yield b"".join(pieces)
                    pieces, buffered = [], 0
        except InvalidOffset:
            # Azure refuses a range starting at the end; the contract yields nothing there.
            if (await self.stat(path)).size != offset:
                raise
            return
        if pieces:
            yield b"".join(pieces)

    async def stat(self, path: str) -> ObjectInfo:
        blob = self._blob(self._key(path))
        with _map_errors(path):
            properties = await blob.get_blob_properties()
        return ObjectInfo(path, int(properties.size), properties.last_modified.timestamp())

    async def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[str]:
        base = self._key(prefix) + "/"
        async for name in in_name_order(self._children(prefix, base)):
            if start_after is None or name > start_after:
                yield name

    async def walk(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        base = self._key(prefix) + "/"
        container = self._service_client().get_container_client(self.container)
        with _map_errors(prefix):
            async for item in container.list_blobs(name_starts_with=base):
                path = item.name[len(self.prefix) :]
                if is_object_path(path):
                    yield ObjectInfo(path, int(item.size), item.last_modified.timestamp())

    # -- writing -----------------------------------------------------------------------

    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        blob = self._blob(self._key(path))
        with _map_errors(path):
            # overwrite=False sends If-None-Match: *; Azure answers 409 if the blob exists.
            await blob.upload_blob(data, overwrite=not if_absent, length=len(data))

    async def delete(self, path: str) -> None:
        key = self._key(path)
        mine: list[str] = []
        container = self._service_client().get_container_client(self.container)
        with _map_errors(path):
            async for item in container.list_blobs(name_starts_with=key):
                name = item.name
                rest = name[len(key) :]
                if rest in ("", WRITER_SUFFIX) or rest.startswith("/"):
                    mine.append(name)
                elif rest.startswith(".") and rest.endswith(BLOCKS_SUFFIX):
                    mine.append(name)  # a staging blob a crashed commit left behind
        if not mine:
            raise PathNotFound(path)
        limit = asyncio.Semaphore(_DELETE_CONCURRENCY)

        async def remove(name: str) -> None:
            async with limit:
                if name.endswith(WRITER_SUFFIX):
                    await self._discard_writer(path, name)
                with contextlib.suppress(PathNotFound), _map_errors(path):
                    await self._blob(name).delete_blob()

        await asyncio.gather(*(remove(name) for name in mine))

    async def delete_if(self, path: str, expected: bytes) -> bool:
        """GET, compare, then Delete Blob with `If-Match` on the ETag read: Azure refuses
        the delete (412) if the blob was replaced meanwhile."""
        blob = self._blob(self._key(path))
        try:
            with _map_errors(path):
                downloader = await blob.download_blob()
                if await downloader.readall() != expected:
                    return False
                await blob.delete_blob(
                    etag=downloader.properties.etag, match_condition=MatchConditions.IfNotModified
                )
        except (PathNotFound, AlreadyExists):  # gone, or replaced (412): not ours to delete
            return False
        return True

    async def move(self, source: str, destination: str) -> None:
        source_key, destination_key = self._key(source), self._key(destination)
        await self._copy(source, source_key, destination_key)
        with _map_errors(source):
            await self._blob(source_key).delete_blob()

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self._key(path)
        if not append:
            writer = _AzureWriter(self, path, key, secrets.token_hex(8), [])
            await writer.save()
            return writer
        with _map_errors(path):
            downloader = await self._blob(key + WRITER_SUFFIX).download_blob()
            state = await downloader.readall()
        token, blocks = _decode_state(path, state)
        return _AzureWriter(self, path, key, token, blocks)

    # -- the rest of the contract ------------------------------------------------------

    async def url_for(self, path: str, expires: int = 900) -> str | None:
        if not self.redirect:
            return None
        key = self._key(path)
        service = self._service_client()
        now = datetime.datetime.now(datetime.UTC)
        expiry = now + datetime.timedelta(seconds=expires)
        account_key = self._shared_key()
        with _map_errors(path):
            if account_key is not None:
                sas = generate_blob_sas(
                    service.account_name or "",
                    self.container,
                    key,
                    account_key=account_key,
                    permission=BlobSasPermissions(read=True),
                    expiry=expiry,
                    start=now - datetime.timedelta(minutes=5),  # clock skew
                )
            else:
                sas = generate_blob_sas(
                    service.account_name or "",
                    self.container,
                    key,
                    user_delegation_key=await self._user_delegation_key(expiry),
                    permission=BlobSasPermissions(read=True),
                    expiry=expiry,
                    start=now - datetime.timedelta(minutes=5),
                )
        base = (self._public_account_url or service.url).rstrip("/")
        return f"{base}/{self.container}/{quote(key)}?{sas}"

    async def check(self) -> None:
        container = self._service_client().get_container_client(self.container)
        try:
            with _map_errors(self.container):
                await container.get_container_properties()
        except BackendUnavailable:
            raise
        except StorageError as exc:
            raise BackendUnavailable(f"container {self.container!r} is not usable: {exc}") from exc

    async def close(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            await service.close()
        credential, self._credential = self._credential, None
        if credential is not None:
            await credential.close()

    # -- helpers -----------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return self.prefix + path  # checked by the wrapper (storage/checked.py)

    def _service_client(self) -> BlobServiceClient:
        """The service client, created on first use (its aiohttp session opens lazily)."""
        if self._service is None:
            if self._connection_string is not None:
                self._service = BlobServiceClient.from_connection_string(
                    self._connection_string, **self._options
                )
            else:
                assert self._account_url is not None
                credential: Any
                if self._account_key is not None:
                    credential = self._account_key
                else:
                    from azure.identity.aio import DefaultAzureCredential

                    credential = self._credential = DefaultAzureCredential(
                        managed_identity_client_id=self._managed_identity_client_id
                    )
                self._service = BlobServiceClient(
                    self._account_url, credential=credential, **self._options
                )
        return self._service

    def _blob(self, name: str) -> BlobClient:
        return self._service_client().get_blob_client(self.container, name)

    def _shared_key(self) -> str | None:
        credential = self._service_client().credential
        key = getattr(credential, "account_key", None)
        return key if isinstance(key, str) else None

    async def _user_delegation_key(self, expiry: datetime.datetime) -> UserDelegationKey:
        """A user delegation key valid past `expiry`, fetched at most about once a day."""
        async with self._lock:
            if self._delegation_key is None or self._delegation_expiry < expiry:
                now = datetime.datetime.now(datetime.UTC)
                until = max(expiry, now + datetime.timedelta(days=1))
                self._delegation_key = await self._service_client().get_user_delegation_key(
                    now - datetime.timedelta(minutes=5), until
                )
                self._delegation_expiry = until
            return self._delegation_key

    async def _stream(
        self, path: str, key: str, byte_range: str | None = None, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """One GET, streamed. The SDK's downloader is not used: it splits a read into
        ranged GETs pinned to the first ETag, so a reader racing an overwrite of a small
        object (a tag link) failed instead of seeing the old or the new version, and it
        holds its whole first range (32 MiB by default) in memory."""
        with _map_errors(path, offset):
            blob = self._blob(key)
            chunks = await blob._client.blob.download(
                range=byte_range,
                validate_content=False,
                data_stream_total=None,
                download_stream_current=0,
            )
            try:
                async for piece in chunks:
                    yield piece
            finally:
                chunks.response.internal_response.close()  # a reader that stopped early

    async def _children(self, path: str, base: str) -> AsyncIterator[str]:
        """Names under `base` in key order (a prefix sorts as `name/`), reserved ones too.

        Azure returns each page in key order; Azurite puts a page's prefixes before its
        blobs: sorting each page serves both."""
        container = self._service_client().get_container_client(self.container)
        with _map_errors(path):
            pages = container.walk_blobs(name_starts_with=base, delimiter="/").by_page()
            async for page in pages:
                keys = sorted([item.name async for item in page])
                for key in keys:  # code point order == the store's UTF-8 byte order
                    name = key[len(base) :].rstrip("/")
                    if name:
                        yield name

    async def _copy(self, path: str, source_key: str, destination_key: str) -> None:
        """Server-side copy within the account, waited for (usually done at once)."""
        source = self._blob(source_key)
        destination = self._blob(destination_key)
        with _map_errors(path):
            copy = await destination.start_copy_from_url(source.url)
            status = copy.get("copy_status")
            while status == "pending":
                await asyncio.sleep(_COPY_POLL)
                status = (await destination.get_blob_properties()).copy.status
        if status != "success":
            raise StorageError(f"copy of {path!r} ended {status!r}")

    async def _discard_writer(self, path: str, state_name: str) -> None:
        """Discard the blocks a writer staged (a Put Blob drops a name's uncommitted blocks)."""
        try:
            with _map_errors(path):
                downloader = await self._blob(state_name).download_blob()
                state = await downloader.readall()
            token, _ = _decode_state(path, state)
        except (PathNotFound, StorageError):
            return
        staging = self._blob(_staging_name(state_name.removesuffix(WRITER_SUFFIX), token))
        with contextlib.suppress(StorageError), _map_errors(path):
            await staging.upload_blob(b"", overwrite=True)
            await staging.delete_blob()


class _AzureWriter(FileWriter):
    """Blocks staged on `<key>.<token>.blocks~`, listed in `<key>.writer~`."""

    def __init__(
        self,
        driver: AzureBlobDriver,
        path: str,
        key: str,
        token: str,
        blocks: list[tuple[str, int]],
    ) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._token = token
        self._blocks = blocks
        self._staging = driver._blob(_staging_name(key, token))
        self._id_prefix = secrets.token_hex(4).encode()
        self._buffer = bytearray()
        self._size = sum(size for _, size in blocks)
        self._saved = True
        self._ended = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        """Buffer `data`, staging a block as each fills; the buffer never exceeds a block.

        If staging fails, the bytes of this call not yet staged are dropped again, so
        `size` says what was accepted (for chunks up to a block: all of it or nothing).
        """
        self._check_open()
        block_size = self._driver.block_size
        rest = memoryview(data)
        while rest:
            taken = rest[: block_size - len(self._buffer)]
            rest = rest[len(taken) :]
            self._buffer += taken
            self._size += len(taken)
            self._saved = False
            if len(self._buffer) == block_size:
                try:
                    await self._stage_buffer()
                except BaseException:
                    del self._buffer[len(self._buffer) - len(taken) :]
                    self._size -= len(taken)
                    raise

    async def close(self) -> None:
        if self._ended:
            return
        try:
            if self._buffer:
                await self._stage_buffer()
            if not self._saved:
                await self.save()
        finally:
            self._end()

    async def commit(self) -> None:
        self._check_open()
        driver = self._driver
        target = driver._blob(self._key)
        with _map_errors(self._path):
            if not self._blocks:
                data = bytes(self._buffer)
                await target.upload_blob(data, overwrite=True, length=len(data))
            else:
                if self._buffer:
                    await self._stage_buffer()
                await self._staging.commit_block_list(
                    [BlobBlock(block_id=block) for block, _ in self._blocks]
                )
        if self._blocks:
            await driver._copy(self._path, self._staging.blob_name, self._key)
            with contextlib.suppress(PathNotFound), _map_errors(self._path):
                await self._staging.delete_blob()
        with contextlib.suppress(PathNotFound), _map_errors(self._path):
            await driver._blob(self._key + WRITER_SUFFIX).delete_blob()
        self._end()

    async def cancel(self) -> None:
        self._check_open()
        self._end()
        await self._driver._discard_writer(self._path, self._key + WRITER_SUFFIX)
        with contextlib.suppress(PathNotFound), _map_errors(self._path):
            await self._driver._blob(self._key + WRITER_SUFFIX).delete_blob()

    async def truncate(self, size: int) -> None:
        """Cut at a block boundary (every `close()` ends a block, so every size a writer
        was closed at is one): a staged block cannot be read back to cut inside it.
        The blocks dropped stay uncommitted on the staging blob, named by no commit."""
        self._check_open()
        kept, total = 0, 0
        for _, block_size in self._blocks:
            if total + block_size > size:
                break
            kept += 1
            total += block_size
        if not 0 <= size <= self._size:
            raise InvalidOffset(self._path, size)
        if kept < len(self._blocks):
            if total != size:
                raise InvalidOffset(self._path, size)  # inside a staged block
            del self._blocks[kept:]
            self._buffer = bytearray()
        else:
            del self._buffer[size - total :]
        self._size = size
        await self.save()

    async def save(self) -> None:
        """Write the state blob: the staging token and the staged blocks, in order."""
        state = json.dumps(
            {"v": _STATE_VERSION, "token": self._token, "blocks": self._blocks}
        ).encode()
        with _map_errors(self._path):
            await self._driver._blob(self._key + WRITER_SUFFIX).upload_blob(state, overwrite=True)
        self._saved = True

    def _check_open(self) -> None:
        if self._ended:
            raise StorageError(f"writer for {self._path} is closed")

    def _end(self) -> None:
        self._ended = True
        self._buffer = bytearray()

    async def _stage_buffer(self) -> None:
        number = len(self._blocks)
        if number >= MAX_BLOCKS:
            raise StorageError(
                f"{self._path}: more than {MAX_BLOCKS} blocks; raise the azure block_size"
                f" (now {self._driver.block_size} bytes) for objects this large"
            )
        # Ids of one blob must all have the same length: this writer's random prefix
        # and a fixed-width counter.
        block_id = base64.b64encode(b"%s%08d" % (self._id_prefix, number)).decode()
        data = bytes(self._buffer)
        with _map_errors(self._path):
            await self._staging.stage_block(block_id, data, length=len(data))
        self._blocks.append((block_id, len(data)))
        self._buffer = bytearray()


def _staging_name(key: str, token: str) -> str:
    return f"{key}.{token}{BLOCKS_SUFFIX}"


def _decode_state(path: str, state: bytes) -> tuple[str, list[tuple[str, int]]]:
    try:
        header = json.loads(state)
        if header.get("v") != _STATE_VERSION:
            raise ValueError(f"unknown version {header.get('v')!r}")
        token = header["token"]
        if not isinstance(token, str) or not token.isalnum():
            raise ValueError("bad token")
        blocks = [(str(block), int(size)) for block, size in header["blocks"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorageError(f"unreadable writer state for {path!r}: {exc}") from exc
    return token, blocks
