"""A response that streams blob content with read-ahead.

starlette's StreamingResponse reads a chunk, sends it, then reads the next. Here the
next chunk is read from storage while the current one is written to the socket, so
disk (or S3) and network overlap. A client that goes away must stop the reading too:
uvicorn's `send` keeps returning quietly after a disconnect, so a task watches
`receive` for it; without it, every aborted pull would still read the whole blob.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class BlobResponse(Response):
    def __init__(
        self, chunks: AsyncIterator[bytes], status_code: int, headers: Mapping[str, str]
    ) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        gone = asyncio.ensure_future(_disconnected(receive))
        pending: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(self._chunks, None))
        try:
            while (chunk := await pending) is not None and not gone.done():
                pending = asyncio.ensure_future(anext(self._chunks, None))
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            for task in (gone, pending):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
