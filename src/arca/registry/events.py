"""Typed domain events: what every state change of the registry publishes, and to whom.

Services publish frozen events to one `Publisher`; `create_app` wires its sinks. The
event log (`arca.events.log`) is the *record* sink: its failure fails the request,
because a change is acknowledged only once its event is durable (docs/events.md).
Followers (the artifact index, metrics) are told afterwards; their failure is logged
and never fails a change, since each can rebuild from storage.

One operation publishes its events as one batch (`Publisher.batch`), so a manifest
push with three tags costs one append, and its events land together and in order.
The /v2 core imports this module only, never a sink.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from arca.formats.digest import Digest
from arca.formats.manifest import Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """A change that happened. `actor` is who did it (None until auth exists)."""

    type: ClassVar[str]
    repository: str
    actor: str | None = None
    time: float = field(default_factory=time.time)

    @property
    def subject(self) -> str:
        return self.repository

    def data(self) -> dict[str, object]:
        """The CloudEvents `data` of this event (JSON values only)."""
        return {"repository": self.repository, "actor": self.actor}


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestPushed(DomainEvent):
    type: ClassVar[str] = "manifest.pushed"
    digest: Digest
    media_type: str
    size: int
    tags: tuple[str, ...] = ()
    artifact_type: str | None = None
    subject_digest: Digest | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    manifest: Manifest | None = field(default=None, compare=False, repr=False)
    """The parsed manifest, for in-process followers (the index); never serialised."""

    @property
    def subject(self) -> str:
        return f"{self.repository}@{self.digest}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "size": self.size,
            "tags": list(self.tags),
            "artifactType": self.artifact_type,
            "subject": str(self.subject_digest) if self.subject_digest else None,
            "labels": dict(self.labels),
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestDeleted(DomainEvent):
    type: ClassVar[str] = "manifest.deleted"
    digest: Digest
    tags: tuple[str, ...] = ()
    """The tags that pointed at it and went with it."""
    reason: str | None = None
    """None for a client's delete; "gc" when garbage collection removed it, "retention"
    when a retention apply did (docs/lifecycle.md)."""

    @property
    def subject(self) -> str:
        return f"{self.repository}@{self.digest}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "tags": list(self.tags),
            "reason": self.reason,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestRestored(ManifestPushed):
    """A manifest brought back from the trash, with the tags it had."""

    type: ClassVar[str] = "manifest.restored"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestPulled(DomainEvent):
    """Sampled (`[events] pull_sample_rate`), off by default."""

    type: ClassVar[str] = "manifest.pulled"
    digest: Digest
    reference: str

    @property
    def subject(self) -> str:
        return f"{self.repository}@{self.digest}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "reference": self.reference,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TagMoved(DomainEvent):
    """A tag now points at `digest`; `previous` is None for a new tag."""

    type: ClassVar[str] = "tag.moved"
    tag: str
    digest: Digest
    previous: Digest | None = None

    @property
    def subject(self) -> str:
        return f"{self.repository}:{self.tag}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": str(self.digest),
            "previous": str(self.previous) if self.previous else None,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TagDeleted(DomainEvent):
    type: ClassVar[str] = "tag.deleted"
    tag: str
    digest: Digest

    @property
    def subject(self) -> str:
        return f"{self.repository}:{self.tag}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": str(self.digest),
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _BlobEvent(DomainEvent):
    digest: Digest

    @property
    def subject(self) -> str:
        return f"{self.repository}@{self.digest}"

    def data(self) -> dict[str, object]:
        return {"repository": self.repository, "digest": str(self.digest), "actor": self.actor}


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobUploaded(_BlobEvent):
    """Verified content reached the repository through an upload session."""

    type: ClassVar[str] = "blob.uploaded"
    size: int
    session_id: str

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "size": self.size,
            "sessionId": self.session_id,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobLinked(_BlobEvent):
    """An existing blob was linked into the repository without an upload (a mount)."""

    type: ClassVar[str] = "blob.linked"
    source: str | None = None

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "from": self.source,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobUnlinked(_BlobEvent):
    type: ClassVar[str] = "blob.unlinked"


@dataclass(frozen=True, slots=True, kw_only=True)
class _UploadEvent(DomainEvent):
    session_id: str

    @property
    def subject(self) -> str:
        return f"{self.repository}/uploads/{self.session_id}"

    def data(self) -> dict[str, object]:
        return {"repository": self.repository, "sessionId": self.session_id, "actor": self.actor}


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadClosed(_UploadEvent):
    type: ClassVar[str] = "upload.closed"
    digest: Digest
    size: int

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "sessionId": self.session_id,
            "digest": str(self.digest),
            "size": self.size,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadCancelled(_UploadEvent):
    type: ClassVar[str] = "upload.cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadPurged(_UploadEvent):
    """An abandoned session deleted by the purge (no actor: the registry did it)."""

    type: ClassVar[str] = "upload.purged"


@dataclass(frozen=True, slots=True, kw_only=True)
class PinAdded(DomainEvent):
    """A manifest or tag was pinned: retention and GC keep it (docs/lifecycle.md)."""

    type: ClassVar[str] = "pin.added"
    reference: str
    """A tag or a digest."""
    reason: str = ""

    @property
    def subject(self) -> str:
        sep = "@" if ":" in self.reference else ":"
        return f"{self.repository}{sep}{self.reference}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "reference": self.reference,
            "reason": self.reason,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PinRemoved(DomainEvent):
    type: ClassVar[str] = "pin.removed"
    reference: str

    @property
    def subject(self) -> str:
        sep = "@" if ":" in self.reference else ":"
        return f"{self.repository}{sep}{self.reference}"

    def data(self) -> dict[str, object]:
        return {"repository": self.repository, "reference": self.reference, "actor": self.actor}


EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ManifestPushed,
    ManifestDeleted,
    ManifestRestored,
    ManifestPulled,
    TagMoved,
    TagDeleted,
    BlobUploaded,
    BlobLinked,
    BlobUnlinked,
    UploadClosed,
    UploadCancelled,
    UploadPurged,
    PinAdded,
    PinRemoved,
)
TYPE_NAMES: frozenset[str] = frozenset(cls.type for cls in EVENT_TYPES)


class EventSink(Protocol):
    """Anything told of events: the log, the artifact index, metrics."""

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...


_batch: contextvars.ContextVar[list[DomainEvent] | None] = contextvars.ContextVar(
    "arca_event_batch", default=None
)


class Publisher:
    """What services publish to: one record sink (must succeed) and followers."""

    def __init__(self) -> None:
        self.record: EventSink | None = None
        self.followers: list[EventSink] = []

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Collect what is published inside into one `publish` at the end.

        Nested batches join the outermost. Events collected before a failure are
        still published (those changes happened), then the failure goes on.
        """
        if _batch.get() is not None:
            yield
            return
        collected: list[DomainEvent] = []
        token = _batch.set(collected)
        try:
            yield
        finally:
            _batch.reset(token)
            if collected:
                await self._deliver(collected)

    async def publish(self, *events: DomainEvent) -> None:
        collected = _batch.get()
        if collected is not None:
            collected.extend(events)
        elif events:
            await self._deliver(list(events))

    async def _deliver(self, events: list[DomainEvent]) -> None:
        try:
            if self.record is not None:
                await self.record.publish(events)
        finally:
            for follower in self.followers:
                try:
                    await follower.publish(events)
                except Exception:
                    log.exception(
                        "event follower failed",
                        extra={
                            "follower": type(follower).__name__,
                            "types": [event.type for event in events],
                        },
                    )
