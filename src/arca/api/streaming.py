"""Responses that send blob content: from a local file by zero-copy, or streamed.

`ZeroCopyResponse` hands the server an open file, offset and count (ASGI's zero-copy
send extension, which arca/serving.py implements for uvicorn): the bytes go from the
page cache to the socket by sendfile, never through Python. Offered only where the
server says so in the scope (plain HTTP), and only for drivers with local files.

`BlobResponse` streams content with read-ahead, for every other case.

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
from typing import BinaryIO

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

ZERO_COPY = "http.response.zerocopy"


def zero_copy(scope: Scope) -> bool:
    """Whether the server sends files itself for this request."""
    return ZERO_COPY in scope.get("extensions", {})


class ZeroCopyResponse(Response):
    def __init__(
        self,
        file: BinaryIO,
        offset: int,
        count: int,
        status_code: int,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self._file, self._offset, self._count = file, offset, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send(
                {
                    "type": ZERO_COPY,
                    "file": self._file,
                    "offset": self._offset,
                    "count": self._count,
                    "more_body": False,
                }
            )
        finally:
            self._file.close()


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
