"""The per-repository limit on open upload sessions, counted in storage.

Every replica and every restart must see the same count, so it lives in storage: one
empty marker object per session, `repositories/<name>/_uploads/<session_id>`, written
when a chunked session opens. Markers are never removed at close: finishing,
cancelling and purging a session stay exactly as they are, and a crash between a
session's end and its marker's removal cannot leave a wrong count. Instead, when
the markers reach the limit, each is checked against its session's state, the
markers of sessions that are gone are deleted, and only live sessions count. That
costs one check per marker once per `limit` sessions opened.

Monolithic uploads (POST ?digest=) live for one request and are not counted. The
count is taken before a session opens, so concurrent POSTs can overshoot the limit
by at most their number.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from arca.errors import TooManyUploads
from arca.storage import layout
from arca.storage.driver import Driver, InvalidPath, PathNotFound

_SESSION_ID = re.compile(r"[0-9a-f]{32}")
_CHECKS_AT_ONCE = 32


class OpenSessions:
    def __init__(self, driver: Driver, limit: int) -> None:
        self._driver = driver
        self.limit = limit

    async def admit(self, name: str) -> None:
        """Raise TooManyUploads if `name` already has `limit` live sessions."""
        if self.limit <= 0:
            return
        markers = [m async for m in self._driver.list(layout.upload_markers(name))]
        if len(markers) < self.limit:
            return
        live = 0
        for start in range(0, len(markers), _CHECKS_AT_ONCE):
            batch = markers[start : start + _CHECKS_AT_ONCE]
            alive = await asyncio.gather(*(self._alive(name, m) for m in batch))
            live += sum(alive)
        if live >= self.limit:
            raise TooManyUploads(name, self.limit)

    async def opened(self, name: str, session_id: str) -> None:
        if self.limit > 0:
            # Unsynced like the session's state: a power cut can only leave a session
            # uncounted (one opened just before it), never count one that is not there.
            await self._driver.put_unsynced(layout.upload_marker(name, session_id), b"")

    async def _alive(self, name: str, marker: str) -> bool:
        if _SESSION_ID.fullmatch(marker) and await self._driver.exists(layout.upload_state(marker)):
            return True
        with contextlib.suppress(PathNotFound, InvalidPath):
            await self._driver.delete(layout.upload_marker(name, marker))
        return False
