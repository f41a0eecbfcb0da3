"""A response that streams blob content with read-ahead.

starlette's StreamingResponse reads a chunk, sends it, then reads the next, and runs
a task group per response to watch for disconnects. Here the next chunk is read from
storage while the current one is being written to the socket, so disk (or S3) and
network overlap; a disconnect surfaces as an error from `send`, which closes the
reader.
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
        pending: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(self._chunks, None))
        try:
            while (chunk := await pending) is not None:
                pending = asyncio.ensure_future(anext(self._chunks, None))
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()
