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

import asyncio
import contextlib
import contextvars
import dataclasses
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
    """A change that happened. `actor` is who did it: the request's user with auth
    on (set by `acting_as` around the request), the local user for a CLI command,
    None when the registry did it on its own (a collector on a timer) or auth is off."""

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
class ArtifactLabelled(DomainEvent):
    """Labels added to or removed from an artifact after its push, by a label artifact
    (`label_digest`) whose subject it is (docs/artifacts.md, "Labels after the push")."""

    type: ClassVar[str] = "artifact.labelled"
    digest: Digest
    label_digest: Digest
    set: Mapping[str, str] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    """The artifact's labels now (pushed ones with every label artifact applied)."""

    @property
    def subject(self) -> str:
        return f"{self.repository}@{self.digest}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "labelDigest": str(self.label_digest),
            "set": dict(self.set),
            "removed": list(self.removed),
            "labels": dict(self.labels),
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
    reason: str | None = None
    """None for a client's delete; "gc" when garbage collection swept the link."""

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "reason": self.reason,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobQuarantined(_BlobEvent):
    """Scrub found the stored bytes do not hash to the digest and moved them aside
    (`repository` is "": blob data belongs to no one repository)."""

    type: ClassVar[str] = "blob.quarantined"
    actual: Digest
    size: int

    @property
    def subject(self) -> str:
        return str(self.digest)

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "digest": str(self.digest),
            "actual": str(self.actual),
            "size": self.size,
            "actor": self.actor,
        }


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


@dataclass(frozen=True, slots=True, kw_only=True)
class GarbageCollected(DomainEvent):
    """One collector run that swept something into the trash (runs that sweep
    nothing record nothing). Each swept manifest is also a `manifest.deleted` and
    each swept link a `blob.unlinked`, both with reason "gc"; unreferenced blob data
    is counted here. `repository` is "": a run spans every repository."""

    type: ClassVar[str] = "gc.swept"
    run_id: str
    manifests: int = 0
    links: int = 0
    blobs: int = 0
    bytes: int = 0
    kept: int = 0
    """Candidates kept at the last moment (re-used or rescued by a push)."""

    @property
    def subject(self) -> str:
        return f"gc-run:{self.run_id}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "runId": self.run_id,
            "manifests": self.manifests,
            "links": self.links,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "kept": self.kept,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TrashPurged(DomainEvent):
    """Trash items deleted for good: by `arca trash purge` or, `automatic`, by a
    collector after `[trash] retention_seconds`."""

    type: ClassVar[str] = "trash.purged"
    items: tuple[str, ...]
    """The purged trash ids (`<run_id>.<item>`), the first 1,000 (one event stays small)."""
    count: int
    bytes: int
    older_than: float
    automatic: bool

    @property
    def subject(self) -> str:
        return "trash"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "items": list(self.items),
            "count": self.count,
            "bytes": self.bytes,
            "olderThan": self.older_than,
            "automatic": self.automatic,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedIn(DomainEvent):
    """A sign-in checked now: a password, robot secret or OIDC token verified afresh
    (a credential remembered from an earlier request is not a new login), or refused
    (`ok` false: wrong credentials, or rate limited). `repository` is ""."""

    type: ClassVar[str] = "auth.login"
    user: str
    address: str
    ok: bool
    reason: str = ""

    @property
    def subject(self) -> str:
        return f"user/{self.user}"

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "user": self.user,
            "address": self.address,
            "ok": self.ok,
            "reason": self.reason,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessDenied(DomainEvent):
    """A request the access check refused (401 or 403); nothing was read or written."""

    type: ClassVar[str] = "auth.denied"
    user: str
    """"" when the request named no valid identity."""
    address: str
    action: str
    status: int

    def data(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "user": self.user,
            "address": self.address,
            "action": self.action,
            "status": self.status,
            "actor": self.actor,
        }


EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ManifestPushed,
    ManifestDeleted,
    ManifestRestored,
    ManifestPulled,
    TagMoved,
    TagDeleted,
    ArtifactLabelled,
    BlobUploaded,
    BlobLinked,
    BlobUnlinked,
    UploadClosed,
    UploadCancelled,
    UploadPurged,
    PinAdded,
    PinRemoved,
    BlobQuarantined,
    GarbageCollected,
    TrashPurged,
    LoggedIn,
    AccessDenied,
)
TYPE_NAMES: frozenset[str] = frozenset(cls.type for cls in EVENT_TYPES)


class EventSink(Protocol):
    """Anything told of events: the log, the artifact index, metrics."""

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...


_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("arca_actor", default=None)


class acting_as:  # a function-like name: `with acting_as(user):`
    """Within this block, events published without an `actor` get `actor`: the
    access check sets it to the request's user, the CLI to the local user.

    A class rather than a `contextlib.contextmanager` generator: the guard enters it
    on every request with auth on, and this costs a fraction of the generator's
    machinery."""

    __slots__ = ("_actor", "_token")

    def __init__(self, actor: str | None) -> None:
        self._actor = actor

    def __enter__(self) -> None:
        self._token = _actor.set(self._actor)

    def __exit__(self, *exc: object) -> None:
        _actor.reset(self._token)


def set_actor(actor: str | None) -> None:
    """Set the actor for the rest of the current task (a request, from the guard)."""
    _actor.set(actor)


def current_actor() -> str | None:
    return _actor.get()


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
        actor = _actor.get()
        if actor is not None:
            events = tuple(
                dataclasses.replace(event, actor=actor) if event.actor is None else event
                for event in events
            )
        collected = _batch.get()
        if collected is not None:
            collected.extend(events)
        elif events:
            await self._deliver(list(events))

    async def _deliver(self, events: list[DomainEvent]) -> None:
        """The record and every follower at the same time, all awaited (the change is
        acknowledged after both): no follower reads the record, so the artifact index
        writes its entries while the event log commits instead of after it (a tag PUT
        waited for one, then the other). The record's failure is raised once the
        followers have run; a follower's is logged (the index is repaired by rebuild)."""
        recording = [self.record.publish(events)] if self.record is not None else []
        outcomes = await asyncio.gather(
            *recording,
            *(self._follow(follower, events) for follower in self.followers),
            return_exceptions=True,
        )
        if recording and isinstance(outcomes[0], BaseException):
            raise outcomes[0]

    @staticmethod
    async def _follow(follower: EventSink, events: list[DomainEvent]) -> None:
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
