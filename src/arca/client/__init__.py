"""The Python client for arca's artifact workflows (docs/artifacts.md).

`arca.client.aio.AsyncArcaClient` is the client; `arca.client.sync.ArcaClient` runs the
same methods blocking. Errors are in `arca.client.errors`, results in
`arca.client.models`. The two clients are also importable from here.
"""

from arca.client.aio import AsyncArcaClient
from arca.client.sync import ArcaClient

__all__ = ["ArcaClient", "AsyncArcaClient"]
