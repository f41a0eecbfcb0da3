"""`arca quota`: each repository's usage beside its `[[quotas]]` limits, counted from
storage (docs/protection.md), registered on the main CLI by `register`."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from arca.cli_options import ConfigFile, Json, StorageDir


def register(app: typer.Typer) -> None:
    app.command("quota")(quota)


def quota(
    storage: StorageDir = None,
    config: ConfigFile = None,
    as_json: Json = False,
) -> None:
    """Usage of every repository a [[quotas]] rule names, against the rule's limits."""
    import sys

    from arca import cli
    from arca.registry.catalog import Catalog

    settings = cli._settings(config, cli._storage_overrides(storage))
    if not settings.quotas:
        typer.echo("arca: no [[quotas]] rules are configured", err=True)
        raise typer.Exit(cli.EXIT_USAGE)

    async def work(registry: Any) -> Any:
        names, _ = await Catalog(registry.driver).page(sys.maxsize, None)
        return await registry.quotas.report(names)

    reports = cli._offline(settings, work)
    rows = [
        {
            "repository": r.name,
            "rule": r.rule,
            "bytes": r.usage.bytes,
            "max_bytes": r.max_bytes,
            "artifacts": r.usage.artifacts,
            "max_artifacts": r.max_artifacts,
        }
        for r in reports
    ]
    if as_json:
        typer.echo(json.dumps({"items": rows}, indent=2))
        return
    table = Table("repository", "rule", "bytes", "artifacts", box=None)
    for row in rows:
        table.add_row(
            row["repository"],
            row["rule"],
            _of(row["bytes"], row["max_bytes"], decimal),
            _of(row["artifacts"], row["max_artifacts"], str),
        )
    Console(soft_wrap=True).print(table)


def _of(used: int, limit: int, show: Any) -> str:
    if not limit:
        return f"{show(used)} (no limit)"
    return f"{show(used)} of {show(limit)} ({100 * used // limit}%)"
