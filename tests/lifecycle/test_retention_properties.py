"""Properties of the retention rules (`decide`, pure): a keep rule or a pin never deletes
more; what a plan keeps, planned again after its deletions, deletes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from arca.formats.digest import Digest
from arca.lifecycle.policies import parse_policies
from arca.lifecycle.retention import DELETE, Artifact, decide

NOW = 1_800_000_000.0
FAMILIES = ("a", "b", "c")


@st.composite
def artifacts(draw: Any) -> list[Artifact]:
    count = draw(st.integers(min_value=0, max_value=25))
    found: list[Artifact] = []
    for number in range(count):
        digest = Digest.of(f"artifact {number}".encode())
        labels = {
            "family": draw(st.sampled_from(FAMILIES)),
            "status": draw(st.sampled_from(("pass", "fail"))),
        }
        tags = draw(st.lists(st.sampled_from(("v1", "release-1", "nightly")), max_size=2))
        subject = None
        if found and draw(st.integers(0, 5)) == 0:  # now and then a referrer
            subject = draw(st.sampled_from(found)).digest
        found.append(
            Artifact(
                digest=digest,
                created=int(NOW) - draw(st.integers(0, 10 * 86400)),
                labels=labels,
                tags=tuple(dict.fromkeys(tags)),
                size=draw(st.integers(0, 1000)),
                subject=subject,
            )
        )
    return found


policies = st.fixed_dictionaries(
    {
        "repositories": st.just(["r"]),
        "keep_last": st.integers(0, 6),
        "keep_last_max_age_seconds": st.sampled_from((0, 3600, 5 * 86400)),
        "keep_younger_than_seconds": st.sampled_from((0, 86400)),
        "keep_tags": st.sampled_from(([], ["^release-"])),
        "keep_latest_with": st.sampled_from(([], [{"status": "pass"}])),
        "keep_latest": st.booleans(),
        "untagged": st.sampled_from(("delete", "keep")),
        "group_by": st.sampled_from(([], ["family"], ["family", "status"])),
    }
).filter(
    lambda p: (
        p["keep_last"]
        or p["keep_younger_than_seconds"]
        or p["keep_tags"]
        or p["keep_latest_with"]
        or p["keep_latest"]
        or p["untagged"] == "keep"
    )
)

MORE_KEEPING = st.sampled_from(
    (
        {"keep_last": 3},
        {"keep_tags": ["^v"]},
        {"keep_latest": True},
        {"keep_latest_with": [{"status": "fail"}]},
        {"keep_younger_than_seconds": 3 * 86400},
        {"untagged": "keep"},
    )
)


def deleted(policy: dict[str, Any], found: list[Artifact], pins: set[Digest]) -> set[Digest]:
    (parsed,) = parse_policies([policy])
    decisions = decide("r", parsed, found, pinned=dict.fromkeys(pins, "pinned"), now=NOW)
    assert {d.digest for d in decisions} == {a.digest for a in found}  # every one decided
    for decision in decisions:
        assert decision.reasons, decision  # and said why
    return {d.digest for d in decisions if d.action == DELETE}


def _more(policy: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    stronger = dict(policy)
    for key, value in extra.items():
        if key == "keep_last":
            stronger[key] = policy[key] + value
        elif key in ("keep_tags", "keep_latest_with"):
            stronger[key] = [*policy[key], *value]
        elif key == "keep_younger_than_seconds":
            stronger[key] = max(policy[key], value)
        else:
            stronger[key] = value
    return stronger


@settings(max_examples=60, deadline=None)
@given(found=artifacts(), policy=policies, extra=MORE_KEEPING)
def test_adding_a_keep_rule_never_deletes_more(
    found: list[Artifact], policy: dict[str, Any], extra: dict[str, Any]
) -> None:
    assert deleted(_more(policy, extra), found, set()) <= deleted(policy, found, set())


@settings(max_examples=60, deadline=None)
@given(found=artifacts(), policy=policies, data=st.data())
def test_a_pin_never_deletes_more_and_keeps_what_it_pins(
    found: list[Artifact], policy: dict[str, Any], data: Any
) -> None:
    pins = set(data.draw(st.lists(st.sampled_from([a.digest for a in found]))) if found else [])
    with_pins = deleted(policy, found, pins)
    assert with_pins <= deleted(policy, found, set())
    assert not with_pins & pins


@settings(max_examples=60, deadline=None)
@given(found=artifacts(), policy=policies)
def test_planning_again_after_the_deletions_deletes_nothing(
    found: list[Artifact], policy: dict[str, Any]
) -> None:
    gone = deleted(policy, found, set())
    left = [a for a in found if a.digest not in gone]
    assert deleted(policy, left, set()) == set()


@settings(max_examples=40, deadline=None)
@given(found=artifacts(), policy=policies)
def test_a_referrer_is_deleted_only_with_its_subject(
    found: list[Artifact], policy: dict[str, Any]
) -> None:
    gone = deleted(policy, found, set())
    for artifact in found:
        if artifact.subject is not None:
            assert (artifact.digest in gone) == (artifact.subject in gone)


def test_keep_n_but_at_most_d_days() -> None:
    """keep_last = 3 with keep_last_max_age_seconds: the newest 3, if younger than D."""
    found = [Artifact(Digest.of(bytes([n])), int(NOW) - n * 86400, {}, ("t",), 1) for n in range(6)]
    policy = {"repositories": ["r"], "keep_last": 3, "keep_last_max_age_seconds": 2 * 86400}
    assert deleted(policy, found, set()) == {a.digest for a in found[2:]}
    unbounded = dataclasses.replace(parse_policies([policy])[0], keep_last_max_age_seconds=0)
    decisions = decide("r", unbounded, found, now=NOW)
    assert {d.digest for d in decisions if d.action == DELETE} == {a.digest for a in found[3:]}


@settings(max_examples=12, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(("pass", "fail")), min_size=1, max_size=8),
    policy=policies,
    pushed=st.integers(0, 3),
    tagged=st.lists(st.integers(0, 7), max_size=2),
)
def test_an_applied_plan_keeps_what_came_since_and_applied_again_deletes_nothing(
    statuses: list[str], policy: dict[str, Any], pushed: int, tagged: list[int]
) -> None:
    """Over real storage (memory driver): apply deletes only planned artifacts, keeps
    everything pushed or tagged between plan and apply, and the same plan applied a
    second time deletes nothing."""
    asyncio.run(_apply_twice(statuses, policy, pushed, tagged))


async def _apply_twice(
    statuses: list[str], policy: dict[str, Any], pushed: int, tagged: list[int]
) -> None:
    from arca.control.artifacts import ArtifactControl
    from arca.lifecycle.retention import Retention
    from arca.registry.registry import Registry
    from arca.storage.drivers.memory import MemoryDriver
    from tests.lifecycle.retention_helpers import push_run, settings_with

    registry = Registry(MemoryDriver(), settings_with([policy], max_delete_fraction=1.0))
    control = ArtifactControl.attach(registry)
    runs = [
        await push_run(
            registry, "r", f"run-{n}", minute=n, labels={"family": "a", "status": status}
        )
        for n, status in enumerate(statuses)
    ]
    retention = Retention(registry, control.index, registry.settings)
    plan = await retention.plan()
    planned = {d.digest for d in plan.deletions}
    since = [
        await push_run(registry, "r", f"new-{n}", minute=1000 + n, labels={"family": "a"})
        for n in range(pushed)
    ]
    retagged = {runs[n] for n in tagged if n < len(runs)}
    for digest in retagged:
        await registry.tags.set("r", f"since-{digest.hex[:8]}", digest)
    first = await retention.apply(plan, dry_run=False, force=True)
    deleted = {o.digest for o in first.of("deleted")}
    assert deleted == planned - retagged
    for digest in [*since, *retagged, *(set(runs) - planned)]:
        assert await registry.manifests.get("r", str(digest))
    second = await retention.apply(plan, dry_run=False, force=True)
    assert second.of("deleted") == []
