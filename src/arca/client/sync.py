"""The blocking facade: every method of `AsyncArcaClient`, run on a private event loop.

One `asyncio.Runner` per client keeps the connection pool alive between calls. It
cannot be used from code already running an event loop (use `AsyncArcaClient` there),
nor from several threads at once.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from arca.client.aio import DEFAULT_REGISTRY, AsyncArcaClient, Labels, Progress, PushOptions
from arca.client.models import (
    ArtifactPage,
    ArtifactRecord,
    ArtifactSummary,
    PullResult,
    PushResult,
    Verification,
)
from arca.formats.artifact import Artifact

T = TypeVar("T")


class ArcaClient:
    """A blocking client for the arca registry at `registry`. Use `with`, or `close()`."""

    def __init__(
        self,
        registry: str = DEFAULT_REGISTRY,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._runner = asyncio.Runner()
        self._client = AsyncArcaClient(registry, timeout=timeout, transport=transport, auth=auth)
        self.registry = self._client.registry

    def __enter__(self) -> ArcaClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._run(self._client.aclose())
        finally:
            self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def push_files(
        self,
        name: str,
        files: Sequence[str | Path] | Mapping[str, str | Path],
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        return self._run(self._client.push_files(name, files, media_types=media_types, **options))

    def push_directory(
        self,
        name: str,
        directory: str | Path,
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        return self._run(
            self._client.push_directory(name, directory, media_types=media_types, **options)
        )

    def push_value(self, name: str, value: Any, **options: Unpack[PushOptions]) -> PushResult:
        return self._run(self._client.push_value(name, value, **options))

    def artifact(self, name: str, reference: str) -> tuple[str, Artifact]:
        return self._run(self._client.artifact(name, reference))

    def pull(
        self, name: str, reference: str, directory: str | Path, *, progress: Progress | None = None
    ) -> PullResult:
        return self._run(self._client.pull(name, reference, directory, progress=progress))

    def pull_files(
        self, name: str, reference: str, *, progress: Progress | None = None
    ) -> dict[str, bytes]:
        return self._run(self._client.pull_files(name, reference, progress=progress))

    def pull_value(self, name: str, reference: str) -> Any:
        return self._run(self._client.pull_value(name, reference))

    def list(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ArtifactPage:
        return self._run(self._client.list(name, labels, limit=limit, cursor=cursor))

    def iter_artifacts(
        self, name: str, labels: Labels | None = None, *, page_size: int | None = None
    ) -> Iterator[ArtifactSummary]:
        cursor: str | None = None
        while True:
            page = self.list(name, labels, limit=page_size, cursor=cursor)
            yield from page.artifacts
            if page.cursor is None:
                return
            cursor = page.cursor

    def latest(self, name: str, labels: Labels | None = None) -> ArtifactSummary:
        return self._run(self._client.latest(name, labels))

    def get(self, name: str, reference: str) -> ArtifactRecord:
        return self._run(self._client.get(name, reference))

    def verify(self, name: str, reference: str) -> Verification:
        return self._run(self._client.verify(name, reference))

    def delete_by_label(self, name: str, labels: Labels) -> builtins.list[str]:
        return self._run(self._client.delete_by_label(name, labels))

    def delete(self, name: str, reference: str) -> str:
        return self._run(self._client.delete(name, reference))
