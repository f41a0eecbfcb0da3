"""An httpx transport that hands each request to an ASGI app in this process, streaming.

httpx's own ASGITransport gathers a whole response body in memory before returning,
which a multi-gigabyte blob must not do; here the body travels through a queue of a
few chunks, so a pull through the embedded store streams as it does over a socket.
The app is arca's own (`create_app`): the embedded store runs exactly the code a
server runs, from routing to storage, and no second implementation can drift from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

_QUEUED_CHUNKS = 2
"""Response chunks waiting for the reader at most (each up to the driver's 2 MiB)."""


class AppTransport(httpx.AsyncBaseTransport):
    """Requests to `app`; `on_close` runs when the client closes (e.g. the driver's close)."""

    def __init__(self, app: ASGIApp, on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self._app = app
        self._on_close = on_close

    async def aclose(self) -> None:
        if self._on_close is not None:
            await self._on_close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        body = request.stream.__aiter__()
        finished = asyncio.Event()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUED_CHUNKS)
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )

        async def receive() -> dict[str, Any]:
            if finished.is_set():
                await asyncio.Event().wait()  # the app waits for a disconnect: never
            try:
                chunk = await body.__anext__()
            except StopAsyncIteration:
                finished.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and not started.done():
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    await queue.put(chunk)
                if not message.get("more_body", False):
                    await queue.put(None)

        task = asyncio.create_task(_run(self._app, _scope(request), receive, send))
        waiting: list[asyncio.Future[Any]] = [started, task]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            error = task.exception()
            raise httpx.RemoteProtocolError(f"the app answered nothing: {error!r}", request=request)
        status, headers = started.result()
        return httpx.Response(status, headers=headers, stream=_Body(queue, task), request=request)


class _Body(httpx.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[bytes | None], task: asyncio.Task[None]) -> None:
        self._queue = queue
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            getter = asyncio.ensure_future(self._queue.get())
            await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                # The app stopped before ending its body: like a server cutting the socket.
                raise httpx.ReadError(f"the response was cut off: {self._task.exception()!r}")
            chunk = getter.result()
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await self._task
            except Exception:  # after the answer was sent, as a server would, log it
                log.exception("embedded request failed after its answer")


async def _run(app: ASGIApp, scope: dict[str, Any], receive: Any, send: Any) -> None:
    await app(scope, receive, send)


def _scope(request: httpx.Request) -> dict[str, Any]:
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(key.lower(), value) for key, value in request.headers.raw],
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "server": (url.host, url.port or 80),
        "client": ("127.0.0.1", 0),
        "root_path": "",
        "state": {},
    }
