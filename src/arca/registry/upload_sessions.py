"""The bookkeeping of upload sessions, one owner per concern.

`registry/uploads.py` runs the protocol (open, append, close, cancel); what it keeps
about sessions lives here, so that each question has one place that answers it:

- `SessionBook`: which sessions are open, in storage (the truth every replica and
  restart sees): their state, when each was last written to, which repository it
  belongs to, opening and ending one. The garbage collector and the upload purge ask
  it; nothing else lists `uploads/`.
- `SessionLocks`: one request at a time per session, in this process (asyncio) and
  across the processes sharing storage (the driver's lock, where it has one). An
  entry lives while someone holds or waits for it, so the table is as big as the
  requests in flight.
- `Blake3Cache`: the blake3 of a session's bytes so far, for sessions this process
  received every byte of. blake3 cannot be serialised, so it is a per-process
  shortcut: forgetting an entry costs the fast path (meta records blake3 later),
  never correctness. Bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import cbor2

from arca.errors import BlobUploadUnknown
from arca.formats.digest import Blake3Hasher, Digest
from arca.storage import layout
from arca.storage.driver import Driver, PathNotFound

SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
BLAKE3_SESSIONS = 10_000
"""Sessions whose blake3 this process keeps; beyond it the least recently used go."""


@dataclass(frozen=True, slots=True)
class SessionState:
    name: str
    offset: int
    sha256: bytes
    created: float
    updated: float

    def encode(self) -> bytes:
        return bytes(
            cbor2.dumps(
                {
                    "name": self.name,
                    "offset": self.offset,
                    "sha256": self.sha256,
                    "created": self.created,
                    "updated": self.updated,
                },
                canonical=True,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> SessionState:
        raw = cbor2.loads(data)
        return cls(raw["name"], raw["offset"], raw["sha256"], raw["created"], raw["updated"])


def check_session_id(session_id: str) -> None:
    if not SESSION_ID.match(session_id):
        raise BlobUploadUnknown(session_id)


class SessionBook:
    """Which upload sessions are open: what storage holds under `uploads/`."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def open(self) -> AsyncIterator[tuple[str, float]]:
        """Every session in storage with the time it was last written to."""
        async for session_id in self._driver.list(layout.UPLOADS):
            if SESSION_ID.match(session_id):
                yield session_id, await self.idle_since(session_id)

    async def ids(self) -> AsyncIterator[str]:
        """Every name under `uploads/` (a session's, or debris a purge judges)."""
        async for session_id in self._driver.list(layout.UPLOADS):
            yield session_id

    async def begin(self, session_id: str, state: SessionState) -> None:
        """Open the session. Not fsynced (`put_unsynced`): a session is progress, not
        something stored; after a power cut it may be unknown (the client starts
        again), but a killed process loses nothing (docs/storage.md, "Uploads")."""
        await self._driver.put_unsynced(layout.upload_state(session_id), state.encode())

    async def save(self, session_id: str, state: SessionState) -> None:
        """Record the offset (and hash state) the session's durable bytes prove.

        Written after those bytes are durable, and not fsynced itself: after a power
        cut the state is this one, an earlier one (its offset and hash state belong
        together, and the data beyond it is cut off when the session resumes), or
        none or unreadable (the session is unknown). Never one that counts bytes the
        data does not hold."""
        await self._driver.put_unsynced(layout.upload_state(session_id), state.encode())

    async def _stored(self, session_id: str) -> SessionState | None:
        """The session's state; None when there is none, or only what a power cut left
        of an unsynced write (an empty or unreadable object)."""
        try:
            return SessionState.decode(await self._driver.get(layout.upload_state(session_id)))
        except PathNotFound:
            return None
        except (ValueError, KeyError, TypeError, cbor2.CBORDecodeError):
            return None

    async def load(self, name: str, session_id: str) -> SessionState:
        """The state of `name`'s session; BlobUploadUnknown if it is not open (or is
        another repository's: the same answer, so ids do not leak across)."""
        check_session_id(session_id)
        state = await self._stored(session_id)
        if state is None or state.name != name:
            raise BlobUploadUnknown(session_id)
        return state

    async def idle_since(self, session_id: str) -> float:
        state = await self._stored(session_id)
        if state is None:
            # No (readable) state: a session whose POST died half way, or what a power
            # cut left of one; judge it by its data.
            try:
                return (await self._driver.stat(layout.upload_data(session_id))).modified
            except PathNotFound:
                return 0.0
        return state.updated

    async def repository_of(self, session_id: str) -> str | None:
        state = await self._stored(session_id)
        return None if state is None else state.name

    async def end(self, session_id: str) -> None:
        """The session is finished (closed, cancelled, purged): its objects go."""
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.upload_dir(session_id))


class SessionLocks:
    """One request at a time per session, here and across processes."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self._held: dict[str, tuple[asyncio.Lock, int]] = {}

    def busy(self, session_id: str) -> bool:
        """Whether a request of this process is in the session right now."""
        entry = self._held.get(session_id)
        return entry is not None and entry[0].locked()

    @contextlib.asynccontextmanager
    async def exclusive(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session. Without the driver's lock, a chunk appended by another
        worker could land in a file already published as a blob."""
        check_session_id(session_id)
        lock, users = self._held.get(session_id, (asyncio.Lock(), 0))
        self._held[session_id] = (lock, users + 1)
        try:
            async with lock, contextlib.AsyncExitStack() as stack:
                try:
                    await stack.enter_async_context(
                        self._driver.lock(layout.upload_dir(session_id))
                    )
                except PathNotFound:
                    raise BlobUploadUnknown(session_id) from None
                yield
        finally:
            lock, users = self._held[session_id]
            if users <= 1:
                del self._held[session_id]
            else:
                self._held[session_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._held)


class Blake3Cache:
    """blake3 of the bytes a session holds, for sessions this process saw whole."""

    def __init__(self, limit: int = BLAKE3_SESSIONS) -> None:
        self.limit = limit
        self._hashers: OrderedDict[str, tuple[int, Blake3Hasher]] = OrderedDict()

    def resume(self, session_id: str, offset: int) -> Blake3Hasher | None:
        """A hasher that has seen exactly the session's first `offset` bytes: the
        remembered one, a new one at offset 0 (any process can start), else None
        (bytes this process never saw: blake3 is computed later)."""
        entry = self._hashers.get(session_id)
        if entry is not None and entry[0] == offset:
            return entry[1]
        return Blake3Hasher() if offset == 0 else None

    def keep(self, session_id: str, offset: int, hasher: Blake3Hasher | None) -> None:
        """After receiving: the hasher covers `offset` bytes (None: it does not, forget)."""
        if hasher is None:
            self._hashers.pop(session_id, None)
            return
        self._hashers[session_id] = (offset, hasher)
        self._hashers.move_to_end(session_id)
        while len(self._hashers) > self.limit:
            self._hashers.popitem(last=False)

    def digest(self, session_id: str, offset: int) -> Digest | None:
        """The blake3 of all `offset` bytes, if this process saw every one of them."""
        entry = self._hashers.get(session_id)
        if entry is not None and entry[0] == offset:
            return entry[1].digest()
        return None

    def drop(self, session_id: str) -> None:
        self._hashers.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._hashers)
