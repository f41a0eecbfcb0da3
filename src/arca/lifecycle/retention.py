"""Retention: a plan that says, for every artifact, keep or delete and which rules decided;
then an apply that deletes exactly that plan, into the trash (docs/lifecycle.md).

*Plan* reads the artifact index (labels, tags, creation times, as `arca ls` shows them),
the pins and each repository's image indexes, and decides with `decide`, a pure
function (the property tests call it directly). It writes nothing.

*Apply* holds the retention lease (one applier at a time, on any replica), re-checks
each planned deletion against storage (gone, pinned, tagged, relabelled since the plan:
kept, and said so), writes a journal of what it will delete, then per artifact:
remembers its tags (`DeletedTags`), untags it, moves its revision link (and referrer
entry) to the trash through `Trash.put`; after each batch of a repository's moves one
scan of its tags and pins brings back whatever was tagged or pinned meanwhile, and the
rest get `manifest.deleted` with reason "retention". A killed applier leaves its
journal; the next apply finishes it first (every step is idempotent), then does its own
plan. GC later sweeps the blobs only the deleted manifests used, and `arca trash
restore <id>` brings an artifact back with its tags.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arca.auth.policy import glob_regex
from arca.config import Settings
from arca.control.index import ArtifactIndex
from arca.errors import ManifestInvalid, ManifestUnknown, RegistryError, TagImmutable
from arca.formats.digest import Digest
from arca.formats.manifest import parse_manifest
from arca.formats.mediatypes import is_index_media_type
from arca.lifecycle.gc import new_run_id
from arca.lifecycle.pins import Pin, Pins
from arca.lifecycle.policies import RetentionPolicy, first_policy
from arca.lifecycle.trash import DeletedTags, Trash, TrashRecord
from arca.registry.events import ManifestDeleted
from arca.registry.manifests import Revision
from arca.registry.registry import Registry
from arca.storage import layout
from arca.storage.driver import PathNotFound
from arca.storage.lease import Lease

log = logging.getLogger(__name__)

PLAN_VERSION = 1
KEEP, DELETE = "keep", "delete"
LEASE_NAME = "retention"
PUSHED_AGAIN = "pushed again during the apply"
PUSHED_SINCE_PLAN = "pushed again since the plan"

_BATCH = 64
"""Deletions of one repository per scan of its tags, at least (more when it has more
tags: see `Retention._run_journal`)."""
_REFERRER_DEPTH = 4
"""Levels of referrers followed below a deleted subject (a signature of an SBOM of a
run is two)."""

Hook = Callable[[str], Awaitable[None]]
Progress = Callable[[str, int, int | None], None]


class RetentionBusy(Exception):
    """Another applier holds the retention lease."""


class UnsafePlan(Exception):
    """The plan would delete every artifact of a repository, or more than
    `max_delete_fraction` of it; `force` applies it anyway."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class PlanInvalid(ValueError):
    """A plan file that is not a retention plan arca wrote."""


# -- deciding ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Artifact:
    """What retention knows of one artifact (an index entry)."""

    digest: Digest
    created: int
    labels: Mapping[str, str]
    tags: tuple[str, ...]
    size: int
    subject: Digest | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "detail": self.detail}


@dataclass(slots=True)
class Decision:
    name: str
    digest: Digest
    created: int
    labels: Mapping[str, str]
    tags: tuple[str, ...]
    size: int
    subject: Digest | None
    group: dict[str, str | None]
    action: str
    reasons: list[Reason]

    @property
    def rules(self) -> set[str]:
        return {reason.rule for reason in self.reasons}

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "created": self.created,
            "labels": dict(self.labels),
            "tags": list(self.tags),
            "size": self.size,
            "subject": None if self.subject is None else str(self.subject),
            "group": dict(self.group),
            "action": self.action,
            "reasons": [reason.to_json() for reason in self.reasons],
        }

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> Decision:
        subject = raw.get("subject")
        return cls(
            name=name,
            digest=Digest.parse(raw["digest"]),
            created=int(raw["created"]),
            labels=dict(raw.get("labels", {})),
            tags=tuple(raw.get("tags", ())),
            size=int(raw.get("size", 0)),
            subject=Digest.parse(subject) if subject else None,
            group=dict(raw.get("group", {})),
            action=str(raw["action"]),
            reasons=[Reason(r["rule"], r["detail"]) for r in raw.get("reasons", ())],
        )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _group_label(group: Mapping[str, str | None]) -> str:
    return ", ".join(f"{k}={'(none)' if v is None else v}" for k, v in group.items()) or "(all)"


def decide(
    name: str,
    policy: RetentionPolicy,
    artifacts: Sequence[Artifact],
    *,
    pinned: Mapping[Digest, str] | None = None,
    protected: Mapping[Digest, str] | None = None,
    index_children: frozenset[Digest] | set[Digest] = frozenset(),
    now: float,
) -> list[Decision]:
    """Keep or delete for every artifact of one repository, with every rule that decided.

    Keep rules are ORed and a keep always wins; a pin wins over everything, and so
    does an immutable tag (`protected`: it may not be removed). Referrers follow their
    subject; children of image indexes are kept (indexes are not judged). Pure: the
    same inputs give the same plan.
    """
    holds: dict[Digest, tuple[str, str]] = {
        **{digest: ("immutable_tag", why) for digest, why in (protected or {}).items()},
        **{digest: ("pinned", why) for digest, why in (pinned or {}).items()},
    }
    decisions: dict[Digest, Decision] = {}
    groups: dict[tuple[str | None, ...], list[Artifact]] = {}
    followers: list[Artifact] = []
    for artifact in artifacts:
        if artifact.subject is not None:
            followers.append(artifact)
        elif artifact.digest in index_children:
            decisions[artifact.digest] = _decision(
                name, artifact, {}, [Reason("index_child", "child of an image index")], holds
            )
        else:
            key = tuple(artifact.labels.get(label) for label in policy.group_by)
            groups.setdefault(key, []).append(artifact)
    for key, members in groups.items():
        group = dict(zip(policy.group_by, key, strict=True))
        members.sort(key=lambda a: layout.index_key(a.created, a.digest))  # newest first
        counted = [
            m
            for m in members
            if not policy.keep_last_max_age_seconds
            or now - m.created < policy.keep_last_max_age_seconds
        ]
        last = {m.digest: rank for rank, m in enumerate(counted[: policy.keep_last])}
        latest_with: dict[Digest, list[str]] = {}
        for selector in policy.keep_latest_with:
            wanted = ", ".join(f"{k}={v}" for k, v in selector.items())
            match = next(
                (m for m in members if all(m.labels.get(k) == v for k, v in selector.items())),
                None,
            )
            if match is not None:
                latest_with.setdefault(match.digest, []).append(wanted)
        where = _group_label(group)
        for rank, artifact in enumerate(members):
            keep: list[Reason] = []
            if artifact.digest in last:
                within = (
                    f" younger than {policy.keep_last_max_age_seconds} s"
                    if policy.keep_last_max_age_seconds
                    else ""
                )
                keep.append(
                    Reason(
                        "keep_last",
                        f"{_ordinal(last[artifact.digest] + 1)} newest{within} of {where},"
                        f" keep_last = {policy.keep_last}",
                    )
                )
            age = int(now - artifact.created)
            if policy.keep_younger_than_seconds and age < policy.keep_younger_than_seconds:
                keep.append(
                    Reason(
                        "keep_younger_than_seconds",
                        f"created {age} s ago, under {policy.keep_younger_than_seconds} s",
                    )
                )
            tagged = policy.kept_tag(artifact.tags)
            if tagged is not None:
                keep.append(Reason("keep_tags", f"tag {tagged[1]} matches {tagged[0]!r}"))
            for wanted in latest_with.get(artifact.digest, []):
                keep.append(Reason("keep_latest_with", f"newest with {wanted} in {where}"))
            if policy.keep_latest and rank == 0:
                keep.append(Reason("keep_latest", f"newest of {where}"))
            if not artifact.tags and policy.untagged == "keep":
                keep.append(Reason("untagged", 'untagged = "keep"'))
            reasons = keep or _why_deleted(policy, artifact, rank, age, where)
            decisions[artifact.digest] = _decision(
                name, artifact, group, reasons, holds, delete=not keep
            )
    # Referrers follow their subject (chains too: a signature of an SBOM of a run).
    pending = list(followers)
    while pending:
        progressed = False
        for artifact in list(pending):
            assert artifact.subject is not None
            subject = decisions.get(artifact.subject)
            if subject is None and any(f.digest == artifact.subject for f in pending):
                continue  # its subject is a referrer not decided yet
            pending.remove(artifact)
            progressed = True
            if subject is None:
                reason = Reason("referrer", f"referrer of {artifact.subject}, not judged")
                decisions[artifact.digest] = _decision(name, artifact, {}, [reason], holds)
            else:
                verb = "kept" if subject.action == KEEP else "deleted"
                reason = Reason("referrer", f"referrer of {verb} {artifact.subject}")
                decisions[artifact.digest] = _decision(
                    name,
                    artifact,
                    dict(subject.group),
                    [reason],
                    holds,
                    delete=subject.action == DELETE,
                )
        if not progressed:  # a cycle cannot be pushed (digests), but never loop
            for artifact in pending:
                reason = Reason("referrer", f"referrer of {artifact.subject}, not judged")
                decisions[artifact.digest] = _decision(name, artifact, {}, [reason], holds)
            break
    return sorted(decisions.values(), key=lambda d: layout.index_key(d.created, d.digest))


def _why_deleted(
    policy: RetentionPolicy, artifact: Artifact, rank: int, age: int, where: str
) -> list[Reason]:
    reasons = []
    if policy.keep_last:
        reasons.append(
            Reason(
                "keep_last",
                f"{_ordinal(rank + 1)} newest of {where}, beyond keep_last = {policy.keep_last}"
                + (
                    f" (or older than {policy.keep_last_max_age_seconds} s)"
                    if policy.keep_last_max_age_seconds
                    else ""
                ),
            )
        )
    if policy.keep_younger_than_seconds:
        reasons.append(
            Reason(
                "keep_younger_than_seconds",
                f"created {age} s ago, over {policy.keep_younger_than_seconds} s",
            )
        )
    if artifact.tags:
        reasons.append(Reason("tagged", f"no keep rule keeps tags {', '.join(artifact.tags)}"))
    else:
        reasons.append(Reason("untagged", 'untagged = "delete"'))
    return reasons


def _decision(
    name: str,
    artifact: Artifact,
    group: dict[str, str | None],
    reasons: list[Reason],
    pinned: Mapping[Digest, tuple[str, str]],
    *,
    delete: bool = False,
) -> Decision:
    if artifact.digest in pinned:
        rule, why = pinned[artifact.digest]
        reason = Reason(rule, why or rule)
        reasons, delete = [reason, *(r for r in reasons if not delete)], False
    return Decision(
        name=name,
        digest=artifact.digest,
        created=artifact.created,
        labels=dict(artifact.labels),
        tags=tuple(artifact.tags),
        size=artifact.size,
        subject=artifact.subject,
        group=group,
        action=DELETE if delete else KEEP,
        reasons=reasons,
    )


# -- the plan ------------------------------------------------------------------------------


SAFETY = {"pinned": "pinned", "keep_latest_with": "last_pass", "keep_latest": "last_run"}
"""Which keep rules count in a summary's "safety" line, and as what."""


def _summary(decisions: Sequence[Decision]) -> dict[str, Any]:
    kept = [d for d in decisions if d.action == KEEP]
    deleted = [d for d in decisions if d.action == DELETE]
    safety = dict.fromkeys(SAFETY.values(), 0)
    for decision in kept:
        for rule in decision.rules & set(SAFETY):
            safety[SAFETY[rule]] += 1
    return {
        "kept": len(kept),
        "deleted": len(deleted),
        "kept_bytes": sum(d.size for d in kept),
        "deleted_bytes": sum(d.size for d in deleted),
        "safety": safety,
    }


@dataclass(slots=True)
class RepositoryPlan:
    name: str
    policy: str
    decisions: list[Decision]

    def groups(self) -> list[dict[str, Any]]:
        by_group: dict[str, tuple[dict[str, str | None], list[Decision]]] = {}
        for decision in self.decisions:
            key = json.dumps(decision.group, sort_keys=True)
            by_group.setdefault(key, (decision.group, []))[1].append(decision)
        return [
            {"group": group, **_summary(members)}
            for _, (group, members) in sorted(by_group.items())
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "policy": self.policy,
            "artifacts": [decision.to_json() for decision in self.decisions],
            "groups": self.groups(),
            **_summary(self.decisions),
        }


@dataclass(slots=True)
class Plan:
    plan_id: str
    created: float
    max_delete_fraction: float
    repositories: list[RepositoryPlan] = field(default_factory=list)

    @property
    def deletions(self) -> list[Decision]:
        return [d for r in self.repositories for d in r.decisions if d.action == DELETE]

    def unsafe(self, max_delete_fraction: float | None = None) -> list[str]:
        """Why applying this plan needs `force` (empty: it does not), judged with the
        plan's own fraction or the one given (apply uses the current setting, so an
        edited plan file cannot raise it)."""
        fraction = self.max_delete_fraction if max_delete_fraction is None else max_delete_fraction
        problems = []
        for repository in self.repositories:
            total = len(repository.decisions)
            deleted = sum(1 for d in repository.decisions if d.action == DELETE)
            if total and deleted == total:
                problems.append(f"{repository.name}: would delete all {total} artifacts")
            elif total and deleted / total > fraction:
                problems.append(
                    f"{repository.name}: would delete {deleted} of {total} artifacts,"
                    f" more than max_delete_fraction = {fraction}"
                )
        return problems

    def to_json(self) -> dict[str, Any]:
        everything = [d for r in self.repositories for d in r.decisions]
        return {
            "version": PLAN_VERSION,
            "plan_id": self.plan_id,
            "created": self.created,
            "max_delete_fraction": self.max_delete_fraction,
            "repositories": [repository.to_json() for repository in self.repositories],
            "summary": _summary(everything),
            "unsafe": self.unsafe(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> Plan:
        try:
            if not isinstance(raw, Mapping) or raw.get("version") != PLAN_VERSION:
                raise PlanInvalid(f"not a version {PLAN_VERSION} retention plan")
            return cls(
                plan_id=str(raw["plan_id"]),
                created=float(raw["created"]),
                max_delete_fraction=float(raw["max_delete_fraction"]),
                repositories=[
                    RepositoryPlan(
                        name=str(r["name"]),
                        policy=str(r["policy"]),
                        decisions=[Decision.from_json(str(r["name"]), d) for d in r["artifacts"]],
                    )
                    for r in raw["repositories"]
                ],
            )
        except PlanInvalid:
            raise
        except (KeyError, TypeError, ValueError, RegistryError) as error:
            raise PlanInvalid(f"not a retention plan: {error}") from None


# -- applying ----------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    name: str
    digest: Digest
    tags: tuple[str, ...]
    size: int
    outcome: str
    """"deleted", "kept" (re-checked: changed since the plan), "gone" (deleted by someone else)."""
    detail: str = ""
    trash_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": str(self.digest),
            "tags": list(self.tags),
            "size": self.size,
            "outcome": self.outcome,
            "detail": self.detail,
            "trash_id": self.trash_id,
        }


@dataclass(frozen=True, slots=True)
class _Moved:
    """An artifact in the trash whose outcome waits for its batch's scan."""

    key: str
    digest: Digest
    tags: tuple[str, ...]
    size: int
    rule: str
    trash_id: str


@dataclass(slots=True)
class ApplyReport:
    run_id: str
    plan_id: str
    dry_run: bool
    started: float
    finished: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    resumed: int = 0
    """Deletions finished for an applier killed earlier."""
    forced: bool = False
    unsafe: list[str] = field(default_factory=list)
    """Why the plan needed force (a dry run reports it instead of refusing)."""

    def of(self, outcome: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    def to_json(self) -> dict[str, Any]:
        deleted = self.of("deleted")
        return {
            "run_id": self.run_id,
            "plan_id": self.plan_id,
            "dry_run": self.dry_run,
            "forced": self.forced,
            "started": self.started,
            "finished": self.finished,
            "deleted": len(deleted),
            "deleted_bytes": sum(o.size for o in deleted),
            "kept": len(self.of("kept")),
            "gone": len(self.of("gone")),
            "resumed": self.resumed,
            "unsafe": list(self.unsafe),
            "outcomes": [o.to_json() for o in self.outcomes],
        }


class Retention:
    """Plans and applies the configured policies over one registry and its index."""

    def __init__(
        self,
        registry: Registry,
        index: ArtifactIndex,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        progress: Progress | None = None,
        hook: Hook | None = None,
        owner: str | None = None,
    ) -> None:
        self._registry = registry
        self._driver = registry.driver
        self._index = index
        self._settings = settings or registry.settings
        self._clock = clock
        self._progress = progress
        self._hook = hook
        self._pins = Pins(self._driver)
        self._trash = Trash(registry)
        self.lease = Lease(
            self._driver,
            LEASE_NAME,
            ttl=float(self._settings.retention.lease_seconds),
            owner=owner,
            clock=clock,
        )

    # -- plan ---------------------------------------------------------------------------

    async def plan(
        self,
        repository: str | None = None,
        policies: tuple[RetentionPolicy, ...] | None = None,
    ) -> Plan:
        """Decide for every artifact of every repository a policy covers (only those
        matching the glob `repository`, when given). Writes nothing."""
        policies = self._settings.retention.policies if policies is None else policies
        now = self._clock()
        plan = Plan(new_run_id(now), now, self._settings.retention.max_delete_fraction)
        only = glob_regex(repository) if repository else None
        names = [
            name
            async for name in self._registry.catalog.repositories()
            if only is None or only.fullmatch(name)
        ]
        for number, name in enumerate(sorted(names)):
            policy = first_policy(policies, name)
            if policy is not None:
                plan.repositories.append(await self._plan_repository(name, policy, now))
            self._tick("plan repositories", number + 1, len(names))
        return plan

    async def _plan_repository(
        self, name: str, policy: RetentionPolicy, now: float
    ) -> RepositoryPlan:
        artifacts = [
            Artifact(e.digest, e.created, dict(e.labels), e.tags, e.size, e.subject)
            async for e in self._index.entries(name, {})
        ]
        pins = await self._pins.pinned(self._registry, name)
        immutability = self._registry.tags.immutability
        protected = {}
        for artifact in artifacts:
            for tag in artifact.tags:
                rule = immutability.rule_for(name, tag)
                if rule is not None:
                    protected[artifact.digest] = f"tag {tag} is immutable (rule {rule})"
        decisions = decide(
            name,
            policy,
            artifacts,
            pinned={digest: _pin_reason(pin) for digest, pin in pins.items()},
            protected=protected,
            index_children=await self._index_children(name),
            now=now,
        )
        return RepositoryPlan(name, policy.name, decisions)

    async def _index_children(self, name: str) -> set[Digest]:
        children: set[Digest] = set()
        async for revision, _ in self._registry.manifests.revisions(name):
            if not is_index_media_type(revision.media_type):
                continue
            try:
                data = await self._registry.blobs.read_all(revision.digest)
                manifest = parse_manifest(data, revision.media_type)
            except (RegistryError, ManifestInvalid, ValueError):
                continue
            children.update(child.digest for child in manifest.children)
        return children

    # -- apply --------------------------------------------------------------------------

    async def apply(
        self,
        plan: Plan | None = None,
        *,
        dry_run: bool = True,
        force: bool = False,
        actor: str | None = None,
    ) -> ApplyReport:
        """Delete exactly the plan's deletions that still hold (a fresh plan when None).

        A dry run (the default) takes no lease and writes nothing: it re-checks and
        reports what a real apply would do now (an unsafe plan is reported, not
        refused). UnsafePlan unless `force`;
        RetentionBusy if another applier holds the lease.
        """
        if dry_run:
            plan = plan or await self.plan()
            return await self._apply(plan, dry_run=True, force=force, actor=actor)
        if not await self.lease.acquire():
            raise RetentionBusy("another retention apply is running")
        try:
            resumed = await self.recover(actor)
            plan = plan or await self.plan()
            report = await self._apply(plan, dry_run=False, force=force, actor=actor)
            report.resumed = resumed
            return report
        finally:
            await self.lease.release()

    async def _apply(
        self, plan: Plan, *, dry_run: bool, force: bool, actor: str | None
    ) -> ApplyReport:
        started = self._clock()
        report = ApplyReport(new_run_id(started), plan.plan_id, dry_run, started, forced=force)
        report.unsafe = plan.unsafe(self._settings.retention.max_delete_fraction)
        if report.unsafe and not force and not dry_run:
            raise UnsafePlan(report.unsafe)
        todo: list[Decision] = []
        seen: dict[str, tuple[dict[Digest, Pin], dict[Digest, set[str]]]] = {}
        for number, decision in enumerate(plan.deletions):
            if decision.name not in seen:  # pins and tags read once per repository
                seen[decision.name] = await self._now(decision.name)
            changed = await self._changed_since(plan, decision, *seen[decision.name])
            if changed is None:
                todo.append(decision)
            else:
                outcome, detail = changed
                report.outcomes.append(
                    Outcome(
                        decision.name,
                        decision.digest,
                        decision.tags,
                        decision.size,
                        outcome,
                        detail,
                    )
                )
            self._tick("re-check", number + 1, len(plan.deletions))
        if dry_run:
            report.outcomes.extend(
                Outcome(d.name, d.digest, d.tags, d.size, "deleted", _rules(d)) for d in todo
            )
            report.finished = self._clock()
            return report
        journal = {
            "run_id": report.run_id,
            "plan_id": plan.plan_id,
            "plan_created": plan.created,
            "started": started,
            "actor": actor,
            "items": [
                {
                    "name": d.name,
                    "digest": str(d.digest),
                    "tags": list(d.tags),
                    "size": d.size,
                    "rule": _rules(d),
                }
                for d in todo
            ],
        }
        await self._driver.put(
            layout.retention_journal(report.run_id), json.dumps(journal).encode()
        )
        await self._step("journal")
        report.outcomes.extend(await self._run_journal(journal))
        await self._finish(report)
        return report

    async def recover(self, actor: str | None = None) -> int:
        """Finish the deletions of appliers killed mid-way (their journals); how many."""
        count = 0
        async for run_id in self._driver.list(layout.retention_applying()):
            try:
                journal = json.loads(await self._driver.get(layout.retention_journal(run_id)))
            except (PathNotFound, ValueError):
                continue
            outcomes = await self._run_journal(journal)
            count += len(outcomes)
            report = ApplyReport(
                run_id,
                str(journal.get("plan_id", "")),
                False,
                float(journal.get("started", 0.0)),
                outcomes=outcomes,
                resumed=len(outcomes),
            )
            await self._finish(report)
            log.info("finished a killed retention apply", extra={"run_id": run_id})
        return count

    async def _finish(self, report: ApplyReport) -> None:
        report.finished = self._clock()
        await self._driver.put(
            layout.retention_run(report.run_id), json.dumps(report.to_json()).encode()
        )
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.retention_journal(report.run_id))
        log.info(
            "retention applied",
            extra={
                "run_id": report.run_id,
                "deleted": len(report.of("deleted")),
                "kept": len(report.of("kept")),
            },
        )

    async def reports(self) -> AsyncIterator[dict[str, Any]]:
        """The reports of finished applies, oldest first."""
        names = sorted([n async for n in self._driver.list(layout.retention_runs())])
        for run_id in names:
            with contextlib.suppress(PathNotFound, ValueError):
                yield json.loads(await self._driver.get(layout.retention_run(run_id)))

    async def _run_journal(self, journal: Mapping[str, Any]) -> list[Outcome]:
        """Delete a journal's items, a repository's at a time, in batches: each item
        is re-checked, untagged and moved at once; then one scan of the repository's
        tags and pins per batch finds what was tagged or pinned since (`_settle`).
        A batch is `_BATCH` deletions, or as many as the repository had tags at the
        last scan if that is more, so the scans read no more than the deletions do:
        an apply is linear in deletions plus tags (a scan after every deletion was
        deletions x tags)."""
        run_id = str(journal["run_id"])
        actor = journal.get("actor")
        items = journal["items"]
        # Written since the plan: pushed again (a journal of an older arca has no
        # plan time: its start is as good, later than the plan).
        since = float(journal.get("plan_created", journal.get("started", 0.0)))
        listed = {(str(item["name"]), str(item["digest"])) for item in items}
        outcomes: list[Outcome] = []
        done = 0
        numbered = [(f"{number:08d}", item) for number, item in enumerate(items)]
        for name, group in itertools.groupby(numbered, key=lambda pair: str(pair[1]["name"])):
            pending = list(group)
            size = _BATCH
            while pending:
                batch, pending = pending[:size], pending[size:]
                settled, tags = await self._delete_batch(run_id, name, batch, listed, actor, since)
                outcomes.extend(settled)
                done += len(batch)
                self._tick("delete", done, len(items))
                size = max(_BATCH, tags)
        return outcomes

    async def _delete_batch(
        self,
        run_id: str,
        name: str,
        batch: Sequence[tuple[str, Mapping[str, Any]]],
        listed: set[tuple[str, str]],
        actor: str | None,
        since: float,
    ) -> tuple[list[Outcome], int]:
        """Delete one batch of one repository's items, then the referrers the plan did
        not list of those that went (label artifacts are not index entries: each to
        the trash beside its subject, as `<key>-<n>`; a subject tagged again is
        restored first, and its referrers stay). The outcomes in journal order, and
        how many tags the repository had at the last scan."""
        outcomes: dict[str, Outcome] = {}
        tags = 0
        level = list(batch)
        for depth in range(_REFERRER_DEPTH + 1):
            moved: list[_Moved] = []
            for key, item in level:
                if self.lease.due and not await self.lease.acquire():  # renews ours
                    raise RetentionBusy("the retention lease was lost during the apply")
                result = await self._move(run_id, key, item, since)
                if isinstance(result, Outcome):
                    outcomes[key] = result
                else:
                    moved.append(result)
            if not moved:
                break
            settled, tags = await self._settle(name, moved, actor)
            outcomes.update(settled)
            if depth == _REFERRER_DEPTH:
                break
            level = []
            for key in sorted(settled):
                if settled[key].outcome == "deleted":
                    level.extend(await self._referrers_of(name, key, settled[key].digest, listed))
        return [outcomes[key] for key in sorted(outcomes)], tags

    async def _referrers_of(
        self, name: str, key: str, subject: Digest, listed: set[tuple[str, str]]
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The referrers of a deleted subject the plan did not list, as journal items."""
        found: list[Digest] = []
        async for entry in self._driver.list(layout.referrers(name, subject)):
            parsed = layout.parse_referrer_entry(
                name, layout.referrer_entry_named(name, subject, entry)
            )
            if parsed is not None and (name, str(parsed[1])) not in listed:
                found.append(parsed[1])
        return [
            (
                f"{key}-{number:03d}",
                {
                    "name": name,
                    "digest": str(digest),
                    "tags": [],
                    "size": 0,
                    "rule": f"referrer: its subject {subject} was deleted",
                },
            )
            for number, digest in enumerate(sorted(found, key=str))
        ]

    async def _now(self, name: str) -> tuple[dict[Digest, Pin], dict[Digest, set[str]]]:
        """The pins of `name` and the tags on each of its manifests, as they are now."""
        tags: dict[Digest, set[str]] = {}
        async for tag, target in self._registry.tags.all(name):
            tags.setdefault(target, set()).add(tag)
        return await self._pins.pinned(self._registry, name), tags

    async def _changed_since(
        self,
        plan: Plan,
        decision: Decision,
        pins: Mapping[Digest, Pin],
        tags_on: Mapping[Digest, set[str]],
    ) -> tuple[str, str] | None:
        """Why a planned deletion no longer holds, or None (delete it). Races after
        this check are `_move`'s and `_settle`'s to handle."""
        name, digest = decision.name, decision.digest
        try:
            info = await self._driver.stat(layout.revision_link(name, digest))
        except PathNotFound:
            return "gone", "deleted since the plan"
        if info.modified > plan.created:
            return "kept", PUSHED_SINCE_PLAN
        if digest in pins:
            return "kept", f"pinned since the plan ({_pin_reason(pins[digest])})"
        new = sorted(tags_on.get(digest, set()) - set(decision.tags))
        if new:
            return "kept", f"tagged since the plan: {', '.join(new)}"
        entry = await self._index.entry(name, digest)
        if entry is not None and dict(entry.labels) != dict(decision.labels):
            return "kept", "labels changed since the plan"
        return None

    async def _move(
        self, run_id: str, key: str, item: Mapping[str, Any], since: float
    ) -> Outcome | _Moved:
        """Re-check, untag, then move to the trash, one artifact: its outcome if that
        is already known (gone, or kept), else what `_settle` decides on. Idempotent
        (a resumed journal calls it again for the item a killed applier was on)."""
        name, digest = str(item["name"]), Digest.parse(item["digest"])
        planned = tuple(item.get("tags", ()))
        size = int(item.get("size", 0))
        rule = str(item.get("rule", ""))
        path = layout.revision_link(name, digest)
        try:
            revision = Revision.decode(await self._driver.get(path))
        except PathNotFound:
            if await self._driver.exists(layout.trash_record(run_id, key)):
                # Moved by a killed applier: settled like the others (the event may
                # not have gone out, and a tag may have been pushed since).
                return _Moved(key, digest, planned, size, rule, f"{run_id}.{key}")
            return Outcome(name, digest, planned, size, "gone", "deleted by someone else")
        with contextlib.suppress(PathNotFound):
            if (await self._driver.stat(path)).modified > since:
                # Written since the plan: pushed again after the re-check, or (by
                # digest, too) after a killed applier had moved it to the trash.
                moved = await self._driver.exists(layout.trash_record(run_id, key))
                return Outcome(
                    name,
                    digest,
                    planned,
                    size,
                    "kept",
                    PUSHED_SINCE_PLAN,
                    f"{run_id}.{key}" if moved else None,
                )
        links = []  # the planned tags still on it; one set since is found by `_settle`
        for tag in planned:
            try:
                link = await self._registry.tags.link(name, tag)
            except ManifestUnknown:
                continue
            if link.digest == digest and link.generation in (None, revision.generation):
                links.append((tag, link))
        # Pinned during the apply, or before a killed one's journal is finished: the
        # digest's pin and those of the tags still on it (a pin of another tag that
        # names it now is `_settle`'s).
        for reference in (str(digest), *(tag for tag, _ in links)):
            pin = await self._pins.get(name, reference)
            if pin is not None:
                return Outcome(name, digest, planned, size, "kept", _pin_reason(pin))
        try:
            for tag, _ in links:
                self._registry.tags.check_remove(name, tag, digest)
        except TagImmutable as refused:  # a rule added since the plan: touch nothing
            return Outcome(name, digest, planned, size, "kept", str(refused))
        remembered = DeletedTags(self._driver)
        for tag, link in links:
            await remembered.tag_deleted(name, tag, digest)  # before the tag goes
            await self._registry.tags.untag(name, tag, link)
        await self._step("untagged")
        objects = [path]
        if revision.subject is not None:
            objects.append(layout.referrer_entry(name, revision.subject, digest))
        record = TrashRecord(
            run_id=run_id,
            item=key,
            kind="revision",
            name=name,
            digest=digest,
            objects=tuple(objects),
            size=revision.size,
            rule=f"retention: {rule}",
            swept_at=self._clock(),
            tags=planned,
        )
        stored = await self._trash.put(record)
        await self._step("trashed")
        return _Moved(key, digest, stored.tags, size, rule, stored.id)

    async def _settle(
        self, name: str, moved: Sequence[_Moved], actor: str | None
    ) -> tuple[dict[str, Outcome], int]:
        """After a batch's moves, one look at the repository as it is now: a moved
        artifact pushed again (its revision re-created), pinned, or tagged since
        its re-check (a push that adopted the revision before it moved: its check
        passed, so it was acknowledged) is kept, and one tagged or pinned comes back
        from the trash; the rest are deleted, and announced. The outcomes by key,
        and how many tags the repository has."""
        pins, tags_on = await self._now(name)
        outcomes = {}
        for m in moved:
            if await self._driver.exists(layout.revision_link(name, m.digest)):
                # A push re-created it meanwhile (arca.registry.manifests re-pushes
                # when its revision vanished): the push wins; the trash item keeps
                # the old tags.
                outcomes[m.key] = Outcome(
                    name, m.digest, m.tags, m.size, "kept", PUSHED_AGAIN, m.trash_id
                )
            elif m.digest in pins or m.digest in tags_on:
                await self._trash.restore(m.trash_id)
                why = _pin_reason(pins[m.digest]) if m.digest in pins else PUSHED_AGAIN
                outcomes[m.key] = Outcome(name, m.digest, m.tags, m.size, "kept", why)
            else:
                await self._announce(name, m.digest, m.tags, actor)
                outcomes[m.key] = Outcome(
                    name, m.digest, m.tags, m.size, "deleted", m.rule, m.trash_id
                )
        return outcomes, sum(len(tags) for tags in tags_on.values())

    async def _announce(
        self, name: str, digest: Digest, tags: tuple[str, ...], actor: str | None
    ) -> None:
        await self._registry.events.publish(
            ManifestDeleted(
                repository=name, digest=digest, tags=tags, reason="retention", actor=actor
            )
        )

    async def _step(self, name: str) -> None:
        if self._hook is not None:
            await self._hook(name)

    def _tick(self, phase: str, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(phase, done, total)


def _pin_reason(pin: Pin) -> str:
    what = f"pinned {pin.reference}" if pin.tag else "pinned"
    by = f" by {pin.actor}" if pin.actor else ""
    return f"{what}{by}" + (f": {pin.reason}" if pin.reason else "")


def _rules(decision: Decision) -> str:
    return "; ".join(f"{r.rule}: {r.detail}" for r in decision.reasons)


async def retain_forever(registry: Registry, index: ArtifactIndex, settings: Settings) -> None:
    """The server's retention: plan and apply every `[retention] interval_seconds` on
    every replica; the lease makes all but one skip each round. Never forced: an unsafe
    plan is logged and left for a person (`arca retention apply --force`)."""
    retention = Retention(registry, index, settings)
    while True:
        await asyncio.sleep(settings.retention.interval_seconds)
        try:
            await retention.apply(dry_run=False)
        except RetentionBusy:
            continue
        except UnsafePlan as error:
            log.error(
                "retention plan refused as unsafe; apply it by hand with --force",
                extra={"problems": error.problems},
            )
        except Exception:
            log.exception("retention failed")
