"""The blocking facade: every method of `AsyncArcaClient`, run on a private event loop.

One `asyncio.Runner` per client keeps the connection pool alive between calls. It
cannot be used from code already running an event loop (use `AsyncArcaClient` there),
nor from several threads at once.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from arca.client.aio import (
    BYTES_FILE,
    DEFAULT_REGISTRY,
    TEXT_FILE,
    AsyncArcaClient,
    Labels,
    PreparedPush,
    Progress,
    PushOptions,
    absolute_time,
)
from arca.client.models import (
    ArtifactPage,
    ArtifactRecord,
    ArtifactSummary,
    LabelResult,
    PullResult,
    PushResult,
    Referrer,
    Verification,
)
from arca.client.reference import ArtifactRef
from arca.formats.artifact import Artifact, ArtifactFile

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

    def push_text(
        self,
        name: str,
        text: str,
        *,
        path: str = TEXT_FILE,
        media_type: str | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        return self._run(
            self._client.push_text(name, text, path=path, media_type=media_type, **options)
        )

    def push_bytes(
        self,
        name: str,
        data: bytes,
        *,
        path: str = BYTES_FILE,
        media_type: str | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        return self._run(
            self._client.push_bytes(name, data, path=path, media_type=media_type, **options)
        )

    def prepare_files(
        self,
        name: str,
        files: Sequence[str | Path] | Mapping[str, str | Path],
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PreparedPush:
        return self._run(
            self._client.prepare_files(name, files, media_types=media_types, **options)
        )

    def prepare_directory(
        self,
        name: str,
        directory: str | Path,
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PreparedPush:
        return self._run(
            self._client.prepare_directory(name, directory, media_types=media_types, **options)
        )

    def push_prepared(self, prepared: PreparedPush) -> PushResult:
        return self._run(self._client.push_prepared(prepared))

    def resolve(self, ref: str | ArtifactRef) -> ArtifactRef:
        return self._run(self._client.resolve(ref))

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

    def pull_bytes(self, name: str, reference: str, *, path: str | None = None) -> bytes:
        return self._run(self._client.pull_bytes(name, reference, path=path))

    def pull_text(
        self, name: str, reference: str, *, path: str | None = None, encoding: str = "utf-8"
    ) -> str:
        return self._run(self._client.pull_text(name, reference, path=path, encoding=encoding))

    def pull_file_to(
        self,
        name: str,
        reference: str,
        write: Callable[[bytes], object],
        *,
        path: str | None = None,
        progress: Progress | None = None,
    ) -> ArtifactFile:
        return self._run(
            self._client.pull_file_to(name, reference, write, path=path, progress=progress)
        )

    def list(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> ArtifactPage:
        return self._run(
            self._client.list(name, labels, limit=limit, cursor=cursor, since=since, until=until)
        )

    def iter_artifacts(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        page_size: int | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> Iterator[ArtifactSummary]:
        since, until = absolute_time(since), absolute_time(until)  # one window for every page
        cursor: str | None = None
        while True:
            page = self.list(name, labels, limit=page_size, cursor=cursor, since=since, until=until)
            yield from page.artifacts
            if page.cursor is None:
                return
            cursor = page.cursor

    def latest(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> ArtifactSummary:
        return self._run(self._client.latest(name, labels, since=since, until=until))

    def get(self, name: str, reference: str) -> ArtifactRecord:
        return self._run(self._client.get(name, reference))

    def verify(self, name: str, reference: str) -> Verification:
        return self._run(self._client.verify(name, reference))

    def delete_by_label(
        self,
        name: str,
        labels: Labels,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> builtins.list[str]:
        return self._run(self._client.delete_by_label(name, labels, since=since, until=until))

    def label(
        self,
        name: str,
        reference: str,
        labels: Mapping[str, str] | None = None,
        *,
        remove: Sequence[str] = (),
    ) -> LabelResult:
        return self._run(self._client.label(name, reference, labels, remove=remove))

    def tag(self, name: str, reference: str, tag: str, *, force: bool = False) -> str:
        return self._run(self._client.tag(name, reference, tag, force=force))

    def untag(self, name: str, tag: str) -> str:
        return self._run(self._client.untag(name, tag))

    def referrers(
        self, name: str, reference: str, *, artifact_type: str | None = None
    ) -> builtins.list[Referrer]:
        return self._run(self._client.referrers(name, reference, artifact_type=artifact_type))

    def repositories(self) -> builtins.list[str]:
        return self._run(self._client.repositories())

    def delete(self, name: str, reference: str) -> str:
        return self._run(self._client.delete(name, reference))

    def pins(self, name: str | None = None) -> builtins.list[dict[str, Any]]:
        return self._run(self._client.pins(name))

    def pin(self, name: str, reference: str, *, reason: str = "") -> dict[str, Any]:
        return self._run(self._client.pin(name, reference, reason=reason))

    def unpin(self, name: str, reference: str) -> dict[str, Any]:
        return self._run(self._client.unpin(name, reference))
