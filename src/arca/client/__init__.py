"""The Python client for arca's artifact workflows (docs/artifacts.md).

`arca.client.aio.AsyncArcaClient` is the client; `arca.client.sync.ArcaClient` runs the
same methods blocking. Errors are in `arca.client.errors`, results in
`arca.client.models`. The two clients are also importable from here, and so is
`open` (the embedded store: the same API in-process over a directory or a bucket,
`arca.client.embedded`).
"""

from arca.client.aio import AsyncArcaClient
from arca.client.embedded import open_async
from arca.client.embedded import open_store as open
from arca.client.sync import ArcaClient

__all__ = ["ArcaClient", "AsyncArcaClient", "open", "open_async"]
