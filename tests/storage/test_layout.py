"""The storage layout, pinned: every path arca writes, and only layout.py builds them.

A change to any path here moves data that existing registries hold, so it must be a
deliberate change to this table (and to docs/layout.md), never a side effect.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path

import pytest

from arca.formats.digest import Digest
from arca.storage import layout

D = Digest("sha256", "ab" + "0" * 62)
S = Digest("sha256", "cd" + "1" * 62)

PINNED: dict[str, tuple[Callable[[], object], object]] = {
    "blob_dir": (lambda: layout.blob_dir(D), f"blobs/sha256/ab/{D.hex}"),
    "blob_data": (lambda: layout.blob_data(D), f"blobs/sha256/ab/{D.hex}/data"),
    "blob_meta": (lambda: layout.blob_meta(D), f"blobs/sha256/ab/{D.hex}/meta"),
    "blob_algorithms": (layout.blob_algorithms, "blobs"),
    "blob_shards": (lambda: layout.blob_shards("sha256"), "blobs/sha256"),
    "blob_shard": (lambda: layout.blob_shard("sha256", "ab"), "blobs/sha256/ab"),
    "repository": (lambda: layout.repository("team/app"), "repositories/team/app"),
    "repository_child": (lambda: layout.repository_child("team", "app"), "repositories/team/app"),
    "layers": (lambda: layout.layers("a"), "repositories/a/_layers"),
    "layer_link": (
        lambda: layout.layer_link("a", D),
        f"repositories/a/_layers/sha256/{D.hex}/link",
    ),
    "revisions": (lambda: layout.revisions("a"), "repositories/a/_manifests/revisions"),
    "revisions_of": (
        lambda: layout.revisions_of("a", "sha256"),
        "repositories/a/_manifests/revisions/sha256",
    ),
    "revision_link": (
        lambda: layout.revision_link("a", D),
        f"repositories/a/_manifests/revisions/sha256/{D.hex}/link",
    ),
    "tags": (lambda: layout.tags("a"), "repositories/a/_manifests/tags"),
    "tag_dir": (lambda: layout.tag_dir("a", "v1"), "repositories/a/_manifests/tags/v1"),
    "tag_current": (
        lambda: layout.tag_current("a", "v1"),
        "repositories/a/_manifests/tags/v1/current/link",
    ),
    "tag_index": (lambda: layout.tag_index("a", "v1"), "repositories/a/_manifests/tags/v1/index"),
    "tag_history": (
        lambda: layout.tag_history("a", "v1", D),
        f"repositories/a/_manifests/tags/v1/index/sha256/{D.hex}/link",
    ),
    "referrers_root": (lambda: layout.referrers_root("a"), "repositories/a/_referrers"),
    "referrers": (lambda: layout.referrers("a", S), f"repositories/a/_referrers/sha256/{S.hex}"),
    "referrer_entry": (
        lambda: layout.referrer_entry("a", S, D),
        f"repositories/a/_referrers/sha256/{S.hex}/sha256-{D.hex}",
    ),
    "referrer_entry_named": (
        lambda: layout.referrer_entry_named("a", S, "sha256-x"),
        f"repositories/a/_referrers/sha256/{S.hex}/sha256-x",
    ),
    "index": (lambda: layout.index("a"), "repositories/a/_index"),
    "index_key": (
        lambda: layout.index_key(0, D),
        f"{layout.INDEX_KEY_MAX_CREATED:012d}-sha256-{D.hex}",
    ),
    "index_entries": (lambda: layout.index_entries("a"), "repositories/a/_index/entries"),
    "index_entry": (lambda: layout.index_entry("a", "k"), "repositories/a/_index/entries/k"),
    "index_label": (
        lambda: layout.index_label("a", "run", "1.0"),
        "repositories/a/_index/labels/run/v=1%2E0",
    ),
    "index_label_entry": (
        lambda: layout.index_label_entry("a", "run", "x", "k"),
        "repositories/a/_index/labels/run/v=x/k",
    ),
    "index_key_time": (lambda: layout.index_key_time(253402300799 - 5), "000000000005"),
    "index_digests": (lambda: layout.index_digests("a"), "repositories/a/_index/digests"),
    "index_digest": (
        lambda: layout.index_digest("a", D),
        f"repositories/a/_index/digests/sha256-{D.hex}",
    ),
    "index_object": (lambda: layout.index_object("a", "x/y"), "repositories/a/_index/x/y"),
    "upload_dir": (lambda: layout.upload_dir("s1"), "uploads/s1"),
    "upload_state": (lambda: layout.upload_state("s1"), "uploads/s1/state"),
    "upload_data": (lambda: layout.upload_data("s1"), "uploads/s1/data"),
    "robot": (lambda: layout.robot("ci"), "auth/robots/ci"),
    "upload_markers": (lambda: layout.upload_markers("team/app"), "repositories/team/app/_uploads"),
    "upload_marker": (
        lambda: layout.upload_marker("team/app", "s1"),
        "repositories/team/app/_uploads/s1",
    ),
    "gc_sweeping": (layout.gc_sweeping, "gc/sweeping"),
    "gc_tombstones": (layout.gc_tombstones, "gc/tombstones"),
    "gc_tombstone": (
        lambda: layout.gc_tombstone("blobs/x"),
        "gc/tombstones/48/482cfd45122dc55f9f9f97fbef3b4b8338da64ab475396981022504ea19529b0",
    ),
    "gc_tombstone_mark": (
        lambda: layout.gc_tombstone_mark("blobs/x").rsplit("/", 1)[1],
        "mark",
    ),
    "gc_tombstone_verdict": (
        lambda: layout.gc_tombstone_verdict("blobs/x").rsplit("/", 1)[1],
        "verdict",
    ),
    "gc_runs": (layout.gc_runs, "gc/runs"),
    "gc_run": (lambda: layout.gc_run("r1"), "gc/runs/r1"),
    "deleted_tags": (lambda: layout.deleted_tags(D), f"gc/deleted-tags/sha256/{D.hex}"),
    "deleted_tag": (
        lambda: layout.deleted_tag("team/app", "v1", D),
        f"gc/deleted-tags/sha256/{D.hex}/team/app/v1",
    ),
    "trash": (layout.trash, "trash"),
    "trash_run": (lambda: layout.trash_run("r1"), "trash/r1"),
    "trash_item": (lambda: layout.trash_item("r1", "000001"), "trash/r1/000001"),
    "trash_record": (lambda: layout.trash_record("r1", "000001"), "trash/r1/000001/record"),
    "trash_object": (lambda: layout.trash_object("r1", "000001", 0), "trash/r1/000001/0"),
    "parse_deleted_tag": (
        lambda: layout.parse_deleted_tag(D, layout.deleted_tag("team/app", "v1", D)),
        ("team/app", "v1"),
    ),
    "quarantine": (layout.quarantine, "quarantine"),
    "quarantine_data": (lambda: layout.quarantine_data(D), f"quarantine/sha256/{D.hex}/data"),
    "quarantine_record": (
        lambda: layout.quarantine_record(D),
        f"quarantine/sha256/{D.hex}/record",
    ),
    "scrub_progress": (layout.scrub_progress, "scrub/progress"),
    "event_log": (layout.event_log, "events/log"),
    "event_block": (lambda: layout.event_block(1), "events/log/000000000001"),
    "event_commit": (lambda: layout.event_commit(10_001), "events/log/000000000001/000000010001"),
    "event_segments": (lambda: layout.event_segments(2), "events/segments/000000000002"),
    "event_segment": (
        lambda: layout.event_segment(20_000, 20_009),
        "events/segments/000000000002/000000020000-000000020009",
    ),
    "webhook": (lambda: layout.webhook("ci"), "events/webhooks/ci"),
    "webhook_cursor": (lambda: layout.webhook_cursor("ci"), "events/webhooks/ci/cursor"),
    "webhook_dead_letters": (lambda: layout.webhook_dead_letters("ci"), "events/webhooks/ci/dead"),
    "webhook_dead_letter": (
        lambda: layout.webhook_dead_letter("ci", "000000000001-0000"),
        "events/webhooks/ci/dead/000000000001-0000",
    ),
    "webhook_redeliveries": (
        lambda: layout.webhook_redeliveries("ci"),
        "events/webhooks/ci/redeliver",
    ),
    "webhook_redelivery": (
        lambda: layout.webhook_redelivery("ci", "000000000001-0000"),
        "events/webhooks/ci/redeliver/000000000001-0000",
    ),
    "lease": (lambda: layout.lease("webhook-ci"), "leases/webhook-ci"),
    "lease_generation": (
        lambda: layout.lease_generation("webhook-ci", 3),
        "leases/webhook-ci/000000000003",
    ),
    "pins": (layout.pins, "pins"),
    "pins_of": (lambda: layout.pins_of("a/b"), "pins/a/b"),
    "pin_digest": (lambda: layout.pin_digest("a/b", D), f"pins/a/b/_digests/sha256-{D.hex}"),
    "pin_tag": (lambda: layout.pin_tag("a/b", "v1"), "pins/a/b/_tags/v1"),
    "retention_applying": (layout.retention_applying, "retention/applying"),
    "retention_journal": (lambda: layout.retention_journal("R1"), "retention/applying/R1"),
    "retention_runs": (layout.retention_runs, "retention/runs"),
    "retention_run": (lambda: layout.retention_run("R1"), "retention/runs/R1"),
    "parse_blob_object": (lambda: layout.parse_blob_object(layout.blob_meta(D)), (D, "meta")),
    "parse_layer_link": (lambda: layout.parse_layer_link("a", layout.layer_link("a", D)), D),
    "parse_revision_link": (
        lambda: layout.parse_revision_link("a/b", layout.revision_link("a/b", D)),
        D,
    ),
    "parse_referrer_entry": (
        lambda: layout.parse_referrer_entry("a", layout.referrer_entry("a", S, D)),
        (S, D),
    ),
}


def _public_functions() -> set[str]:
    return {
        name
        for name, value in vars(layout).items()
        if inspect.isfunction(value)
        and not name.startswith("_")
        and value.__module__ == layout.__name__
    }


def test_every_layout_function_is_pinned() -> None:
    assert _public_functions() == set(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_layout_path_is_pinned(name: str) -> None:
    build, expected = PINNED[name]
    assert build() == expected


def test_tombstone_key_is_the_sha256_of_the_path() -> None:
    import hashlib

    key = hashlib.sha256(b"blobs/x").hexdigest()
    assert layout.gc_tombstone("blobs/x") == f"gc/tombstones/{key[:2]}/{key}"


@pytest.mark.parametrize(
    "path",
    [
        "blobs/sha256/ab/cd/data",  # shard does not match the hex
        f"blobs/sha256/ab/{D.hex}/other",
        f"repositories/a/_layers/sha256/{D.hex}/data",
        "blobs/md5/ab/abcd/data",
    ],
)
def test_parsers_refuse_foreign_paths(path: str) -> None:
    assert layout.parse_blob_object(path) is None
    assert layout.parse_layer_link("a", path) is None


_ROOTS = tuple(
    f"{root}/"
    for root in (
        layout.BLOBS,
        layout.REPOSITORIES,
        layout.UPLOADS,
        layout.GC,
        layout.TRASH,
        layout.QUARANTINE,
        layout.SCRUB,
        layout.EVENTS,
        layout.LEASES,
    )
)


def _path_building(tree: ast.AST) -> list[int]:
    """Lines that build a storage path by hand: an f-string or `+` starting from a
    layout value, or a literal under one of the layout's roots."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.FormattedValue) and "layout." in ast.unparse(first.value):
                found.append(node.lineno)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(_ROOTS)
        ) or (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Add)
            and "layout." in ast.unparse(node.left)
        ):
            found.append(node.lineno)
    return found


def test_no_module_outside_layout_builds_a_storage_path() -> None:
    source = Path(layout.__file__).parents[1]
    offenders = {}
    for path in sorted(source.rglob("*.py")):
        if path == Path(layout.__file__) or path.parent.name == "drivers":
            continue
        lines = _path_building(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            offenders[str(path.relative_to(source))] = lines
    assert offenders == {}
