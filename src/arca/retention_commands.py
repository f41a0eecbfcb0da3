"""`arca retention plan|apply` (against storage, like `arca gc`) and `arca pin`, `arca pins`
(through a running registry, so auth applies), registered on the main CLI by `register`.

Dry run is the default: `plan` never writes, `apply` without `--yes` re-checks and
prints what it would delete (docs/lifecycle.md).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from arca.cli_options import DEFAULT_REGISTRY, ConfigFile, Json, PlainHttp, RegistryUrl, StorageDir

retention_app = typer.Typer(
    no_args_is_help=True, help="Retention policies: plan what to delete, then apply it."
)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
    app.command("pin")(pin)
    app.command("pins")(pins)


def _retention(registry: Any, progress: Any) -> Any:
    from arca.control.index import ArtifactIndex
    from arca.lifecycle.retention import Retention

    index = next(f for f in registry.events.followers if isinstance(f, ArtifactIndex))
    return Retention(registry, index, registry.settings, progress=progress)


@retention_app.command("plan")
def plan(
    repository: Annotated[
        str | None, typer.Option(help="Only repositories matching this glob.", metavar="GLOB")
    ] = None,
    storage: StorageDir = None,
    config: ConfigFile = None,
    as_json: Json = False,
) -> None:
    """Every artifact a policy governs: keep or delete, and every rule that decided it.

    Writes nothing. `--json` prints the plan (docs/retention-plan.schema.json), which
    `arca retention apply --plan FILE` applies exactly."""
    from arca import cli

    settings = cli._settings(config, cli._storage_overrides(storage))
    if not settings.retention.policies:
        cli._fail(as_json, cli.EXIT_USAGE, "USAGE", "no [[retention.policies]] are configured")
    with cli._phases(not as_json and sys.stderr.isatty()) as progress:

        async def work(registry: Any) -> Any:
            return await _retention(registry, progress).plan(repository)

        try:
            found = cli._offline(settings, work)
        except Exception as error:
            cli._fail(as_json, cli.EXIT_SERVER, "STORAGE", f"plan failed: {error}")
    document = found.to_json()
    if as_json:
        cli._print_json(document)
        return
    _print_plan(document)


def _print_plan(document: dict[str, Any]) -> None:
    out = Console(width=None if sys.stdout.isatty() else 200)
    for repository in document["repositories"]:
        out.print(
            f"{repository['name']} (policy {repository['policy']})",
            markup=False,
            highlight=False,
        )
        table = Table(box=None, pad_edge=False)
        for column in ("ACTION", "CREATED", "DIGEST", "TAGS", "GROUP", "SIZE", "WHY"):
            table.add_column(column, no_wrap=column != "WHY")
        for artifact in repository["artifacts"]:
            created = datetime.fromtimestamp(artifact["created"], UTC)
            table.add_row(
                artifact["action"],
                created.strftime("%Y-%m-%d %H:%M:%S"),
                artifact["digest"].removeprefix("sha256:")[:12],
                ",".join(artifact["tags"]),
                " ".join(f"{k}={v}" for k, v in artifact["group"].items()),
                decimal(artifact["size"]),
                "; ".join(f"{r['rule']}: {r['detail']}" for r in artifact["reasons"]),
            )
        out.print(table, markup=False, highlight=False)
        for group in repository["groups"]:
            label = " ".join(f"{k}={v}" for k, v in group["group"].items()) or "(all)"
            out.print(f"  {label}: {_counts(group)}", markup=False, highlight=False)
    out.print(f"total: {_counts(document['summary'])}", markup=False, highlight=False)
    for problem in document["unsafe"]:
        out.print(f"unsafe: {problem} (apply needs --force)", markup=False, highlight=False)


def _counts(summary: dict[str, Any]) -> str:
    safety = summary["safety"]
    return (
        f"keep {summary['kept']} ({decimal(summary['kept_bytes'])}),"
        f" delete {summary['deleted']} ({decimal(summary['deleted_bytes'])});"
        f" safety: {safety['pinned']} pinned, {safety['last_pass']} last-pass,"
        f" {safety['last_run']} last-run kept"
    )


@retention_app.command("apply")
def apply(
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan", help="A plan from `plan --json` (default: plan now).", metavar="FILE"
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete (without it: a dry run).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Apply a plan deleting more than max_delete_fraction, or all."
        ),
    ] = False,
    storage: StorageDir = None,
    config: ConfigFile = None,
    as_json: Json = False,
) -> None:
    """Delete exactly the plan's deletions, each re-checked, into the trash.

    Without --yes nothing changes: it prints what would be deleted now. Anything
    pushed, pinned, tagged or relabelled since the plan is kept, and said so."""
    from arca import cli
    from arca.lifecycle.retention import Plan, PlanInvalid, RetentionBusy, UnsafePlan

    settings = cli._settings(config, cli._storage_overrides(storage))
    given = None
    if plan_file is not None:
        try:
            given = Plan.from_json(json.loads(plan_file.read_text(encoding="utf-8")))
        except OSError as error:
            cli._fail(as_json, cli.EXIT_USAGE, "LOCAL_FILE", f"cannot read {plan_file}: {error}")
        except (ValueError, PlanInvalid) as error:
            cli._fail(as_json, cli.EXIT_USAGE, "USAGE", f"{plan_file}: {error}")
    elif not settings.retention.policies:
        cli._fail(as_json, cli.EXIT_USAGE, "USAGE", "no [[retention.policies]] are configured")
    with cli._phases(not as_json and sys.stderr.isatty()) as progress:

        async def work(registry: Any) -> Any:
            return await _retention(registry, progress).apply(given, dry_run=not yes, force=force)

        try:
            report = cli._offline(settings, work)
        except RetentionBusy:
            cli._fail(as_json, cli.EXIT_SERVER, "BUSY", "another retention apply is running")
        except UnsafePlan as error:
            cli._fail(
                as_json,
                cli.EXIT_NEGATIVE,
                "UNSAFE",
                f"the plan is unsafe: {error}; read it, then apply with --force",
            )
        except Exception as error:
            cli._fail(as_json, cli.EXIT_SERVER, "STORAGE", f"apply failed: {error}")
    document = report.to_json()
    if as_json:
        cli._print_json(document)
        return
    verb = "would delete" if not yes else "deleted"
    for outcome in document["outcomes"]:
        where = f"{outcome['name']}@{outcome['digest']}"
        if outcome["outcome"] == "deleted":
            trash = f" (trash {outcome['trash_id']})" if outcome["trash_id"] else ""
            typer.echo(f"{verb} {where}{trash}")
        else:
            typer.echo(f"{outcome['outcome']} {where}: {outcome['detail']}")
    for problem in document["unsafe"]:
        typer.echo(f"unsafe: {problem} ({'forced' if force else 'apply needs --force'})")
    cli._stderr.print(
        f"{verb} {document['deleted']} artifacts, {decimal(document['deleted_bytes'])};"
        f" kept {document['kept']} changed since the plan, {document['gone']} gone"
        + (
            f"; finished {document['resumed']} left by a killed apply"
            if document["resumed"]
            else ""
        )
        + ("" if yes else " (dry run: --yes deletes)"),
        markup=False,
        highlight=False,
    )


def pin(
    target: Annotated[
        str, typer.Argument(help="NAME:TAG or NAME@DIGEST.", metavar="NAME:TAG|NAME@DIGEST")
    ],
    off: Annotated[bool, typer.Option("--off", help="Remove the pin.")] = False,
    reason: Annotated[
        str, typer.Option(help="Why (shown by `arca pins` and in plans).", metavar="TEXT")
    ] = "",
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    as_json: Json = False,
) -> None:
    """Pin an artifact (by digest) or a tag (whatever it points at): retention and
    garbage collection keep it above every rule. Needs admin on the repository."""
    from arca import cli

    name, reference = cli._target(target, reference=True)
    assert reference is not None
    with cli._errors(as_json), cli._connect(registry, plain_http, 60.0) as client:
        found = client.unpin(name, reference) if off else client.pin(name, reference, reason=reason)
    if as_json:
        cli._print_json(found)
        return
    sep = "@" if ":" in found["reference"] else ":"
    typer.echo(f"{'unpinned' if off else 'pinned'} {found['name']}{sep}{found['reference']}")


def pins(
    name: Annotated[
        str | None, typer.Argument(help="Only this repository.", metavar="NAME")
    ] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    as_json: Json = False,
) -> None:
    """List pins: what retention and garbage collection never remove."""
    from arca import cli

    with cli._errors(as_json), cli._connect(registry, plain_http, 60.0) as client:
        found = client.pins(name)
    if as_json:
        cli._print_json({"pins": found})
        return
    table = Table("PINNED", "SINCE", "BY", "REASON", box=None, pad_edge=False)
    for item in found:
        sep = "@" if ":" in item["reference"] else ":"
        since = datetime.fromtimestamp(item["created"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            f"{item['name']}{sep}{item['reference']}", since, item["actor"] or "", item["reason"]
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table, markup=False, highlight=False)
