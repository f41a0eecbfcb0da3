"""uvicorn's httptools protocol with the read timeouts uvicorn does not have.

uvicorn closes a connection idle *between* requests (`timeout_keep_alive`), but has
no limit on how long request headers or a body may take: a client that connects and
sends nothing, or a header line a minute (slowloris), or a body byte a minute, holds a
connection and its task forever. This protocol adds the two limits Apache's
mod_reqtimeout and nginx's `client_header_timeout`/`client_body_timeout` have:

- headers: from the connection (or the first byte of the next request on a kept-alive
  one) to the end of the headers, at most `header_timeout` seconds;
- body: the body must keep coming. Its deadline starts `body_timeout` seconds after
  the headers; every n bytes received move it n / `body_min_rate` seconds later, never
  more than `body_timeout` seconds past now. A body arriving at `body_min_rate` bytes
  per second or faster never times out; a stalled one is closed `body_timeout`
  seconds after its last byte at most.

Time the server itself holds the client back (reading paused because the
application has not consumed what it got, or `Expect: 100-continue` not yet
answered) never counts against the client.

A connection that runs out of time is closed, with one info line; a request in
progress sees a disconnect (`arca.api.rendering.client_disconnected`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


def guarded_protocol(
    header_timeout: float, body_timeout: float, body_min_rate: float
) -> Callable[..., asyncio.Protocol]:
    """What `uvicorn.run(http=...)` takes; a partial of a module-level class, so it
    pickles into worker processes."""
    return functools.partial(
        GuardedHttpToolsProtocol,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        body_min_rate=body_min_rate,
    )


class _Flow(FlowControl):
    """uvicorn's flow control, telling the protocol how long reading was paused."""

    def __init__(self, transport: asyncio.Transport, on_resume: Callable[[float], None]) -> None:
        super().__init__(transport)
        self._on_resume = on_resume
        self._paused_at = 0.0

    def pause_reading(self) -> None:
        if not self.read_paused:
            self._paused_at = time.monotonic()
        super().pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self._on_resume(time.monotonic() - self._paused_at)
        super().resume_reading()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        *args: Any,
        header_timeout: float,
        body_timeout: float,
        body_min_rate: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._body_min_rate = body_min_rate
        self._timer: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0

    # -- headers ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _Flow(transport, self._reading_resumed)
        self._start_header_clock()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # the next request on a kept-alive connection
            self._start_header_clock()

    def _start_header_clock(self) -> None:
        if self._header_timeout > 0:
            self._arm(self._header_timeout, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._timer = None
        self._close("request headers not received in time", self._header_timeout)

    # -- body ------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self._body_timeout > 0:
            self._body_deadline = time.monotonic() + self._body_timeout
            self._arm(self._body_timeout, self._check_body)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._body_min_rate > 0:
            now = time.monotonic()
            earned = self._body_deadline + len(body) / self._body_min_rate
            self._body_deadline = min(earned, now + self._body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _reading_resumed(self, paused: float) -> None:
        self._body_deadline += paused

    def _check_body(self) -> None:
        self._timer = None
        now = time.monotonic()
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            # The server holds the client back; the clock restarts when it reads again.
            self._body_deadline = max(self._body_deadline, now + self._body_timeout)
        elif now >= self._body_deadline:
            self._close("request body not received in time", self._body_timeout)
            return
        self._arm(self._body_deadline - now, self._check_body)

    # -- shared ----------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(max(delay, 0.0), callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self, message: str, timeout: float) -> None:
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        log.info(message, extra={"client": client, "timeout_seconds": timeout})
        self.transport.close()
