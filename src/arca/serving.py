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

It also implements ASGI's zero-copy send extension (`http.response.zerocopy`, offered
in the scope of plain-HTTP requests; TLS needs the bytes in user space): a response
names an open file, an offset and a count, and the bytes go from the page cache to
the socket by `os.sendfile`, never through Python. Blob GETs on the filesystem driver
use it (arca/api/streaming.py); uvicorn itself has no zero-copy path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import select
import time
from collections.abc import Awaitable, Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from arca.api.streaming import ZERO_COPY

log = logging.getLogger(__name__)

# A client that reads nothing for this long has its zero-copy response abandoned (and
# the connection closed): a send holds a thread, which must not be held forever.
SEND_STALL_SECONDS = 120.0
# Body bytes a connection reads ahead of the application before it stops reading the
# socket (uvicorn: 64 KiB). A blob upload hashes and writes one 2 MiB block at a time;
# with room for two more the next blocks keep arriving meanwhile, so network, hashing
# and the disk overlap instead of taking turns. Per connection, so memory stays bounded.
BODY_BUFFER = 4 << 20
# All connections' read-ahead together, per process: past it each connection reads at
# most 64 KiB ahead (uvicorn's limit), so that a thousand slow uploads cannot make the
# process hold gigabytes of bodies the application has not taken yet.
BODY_BUFFERS_TOTAL = 64 << 20
_LEAN_BUFFER = 64 * 1024
# Threads that run sendfile loops: one per response being sent, apart from the default
# executor so that many slow pulls cannot starve storage calls of threads.
_SENDERS = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="arca-send")


def guarded_protocol(
    header_timeout: float, body_timeout: float, body_min_rate: float, zero_copy: bool = True
) -> Callable[..., asyncio.Protocol]:
    """What `uvicorn.run(http=...)` takes; a partial of a module-level class, so it
    pickles into worker processes."""
    return functools.partial(
        GuardedHttpToolsProtocol,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        body_min_rate=body_min_rate,
        zero_copy=zero_copy,
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
        zero_copy: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._zero_copy = zero_copy
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._body_min_rate = body_min_rate
        self._timer: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0
        self._body: _Body | None = None
        """The body buffer of `self.cycle` (the request whose bytes arrive now)."""
        self._bodies: set[_Body] = set()
        """Every body buffer of this connection whose response has not completed."""

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
        offer = self._zero_copy and self.scheme == "http"
        if offer:
            self.scope.setdefault("extensions", {})[ZERO_COPY] = {}
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not previous:
            # The cycle's task has not started yet: it will call this `receive` and `send`.
            self._body = body = _Body()
            self._bodies.add(body)
            cycle.receive = functools.partial(_receive, cycle, body)  # type: ignore[method-assign]
            cycle.on_response = functools.partial(self._responded, body, cycle.on_response)
            if offer:
                cycle.send = functools.partial(_send, cycle, cycle.send)  # type: ignore[method-assign]
        if self._body_timeout > 0:
            self._body_deadline = time.monotonic() + self._body_timeout
            self._arm(self._body_timeout, self._check_body)

    def on_body(self, body: bytes) -> None:
        """uvicorn's `on_body`, keeping the chunks as they came (uvicorn appends each to
        a bytearray, then copies that into bytes in `receive`: two copies of every
        byte) and reading ahead up to BODY_BUFFER bytes instead of 64 KiB."""
        cycle, buffer = self.cycle, self._body
        if cycle is None or buffer is None or cycle.response_complete:
            return
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        buffer.add(body)
        ahead = BODY_BUFFER if _Body.buffered <= BODY_BUFFERS_TOTAL else _LEAN_BUFFER
        if buffer.size > ahead:
            self.flow.pause_reading()
        cycle.message_event.set()
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
        for body in self._bodies:
            body.release()
        self._bodies.clear()
        super().connection_lost(exc)

    def _responded(self, body: _Body, on_response: Callable[[], None]) -> None:
        """A response is complete: what its request left unread is dropped."""
        body.release()
        self._bodies.discard(body)
        on_response()

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


# -- request bodies ----------------------------------------------------------------------


class _Body:
    """What has arrived of a request's body and not yet been received by the app."""

    __slots__ = ("chunks", "size")

    buffered = 0
    """Bytes held by every body buffer of the process (its one event loop's connections)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        _Body.buffered += len(chunk)

    def take(self) -> bytes:
        """Everything buffered, as one bytes object: the chunk itself when there is one
        (no copy), else the chunks joined once."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.release()
        return data

    def release(self) -> None:
        _Body.buffered -= self.size
        self.chunks, self.size = [], 0


async def _receive(cycle: RequestResponseCycle, body: _Body) -> Any:
    """uvicorn's `receive`, handing over everything buffered (`_Body.take`)."""
    if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
        cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        cycle.waiting_for_100_continue = False
    if not cycle.disconnected and not cycle.response_complete:
        cycle.flow.resume_reading()
        await cycle.message_event.wait()
        cycle.message_event.clear()
    if cycle.disconnected or cycle.response_complete:
        return {"type": "http.disconnect"}
    return {"type": "http.request", "body": body.take(), "more_body": cycle.more_body}


# -- zero-copy send --------------------------------------------------------------------


async def _send(
    cycle: RequestResponseCycle,
    send: Callable[[Any], Awaitable[None]],
    message: Any,
) -> None:
    """uvicorn's `send`, plus `http.response.zerocopy` messages after the start."""
    if message["type"] != ZERO_COPY:
        await send(message)
        return
    if cycle.disconnected:
        return
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError("a zero-copy body needs a started response with a Content-Length")
    file = message["file"]
    offset = message.get("offset")
    count = message.get("count")
    if offset is None:
        offset = file.tell()
    if count is None:
        count = os.fstat(file.fileno()).st_size - offset
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.scope["method"] != "HEAD" and count:
        transport = cycle.transport
        await _written_out(cycle)
        if cycle.disconnected:
            return
        socket = transport.get_extra_info("socket")
        # Duplicates: the thread owns descriptors nobody else can close (and so reuse)
        # under it, whatever happens to the connection or the caller's file meanwhile.
        out_fd, in_fd = os.dup(socket.fileno()), os.dup(file.fileno())
        loop = asyncio.get_running_loop()
        sent = await loop.run_in_executor(_SENDERS, _sendfile, out_fd, in_fd, offset, count)
        cycle.expected_content_length -= sent
        if sent < count:
            # The client left or stalled, or the file is shorter than it was: the
            # response cannot be completed, and the connection must not be reused.
            cycle.disconnected = True
            cycle.message_event.set()
            transport.close()
            return
    else:
        cycle.expected_content_length -= count
    await send(
        {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
    )


async def _written_out(cycle: RequestResponseCycle) -> None:
    """Wait until the transport has written everything it buffered (the headers):
    sendfile writes to the socket directly, after them."""
    transport = cycle.transport
    while transport.get_write_buffer_size() and not cycle.disconnected:
        high = transport.get_write_buffer_limits()[1]
        transport.set_write_buffer_limits(high=0)  # pause_writing now, resume when empty
        try:
            await cycle.flow.drain()
        finally:
            transport.set_write_buffer_limits(high=high)


def _sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Send `count` bytes of `in_fd` from `offset` to the (non-blocking) socket; returns
    how many went. Closes both descriptors."""
    sent = 0
    try:
        poller = select.poll()
        poller.register(out_fd, select.POLLOUT)
        idle_since = time.monotonic()
        while sent < count:
            try:
                done = os.sendfile(out_fd, in_fd, offset + sent, count - sent)
            except BlockingIOError:
                poller.poll(1000)
                if time.monotonic() - idle_since > SEND_STALL_SECONDS:
                    break
                continue
            except OSError:  # the client is gone (EPIPE, ECONNRESET)
                break
            if done == 0:  # end of file before `count`
                break
            sent += done
            idle_since = time.monotonic()
    finally:
        os.close(out_fd)
        os.close(in_fd)
    return sent
