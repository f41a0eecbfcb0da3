"""`arca label NAME:TAG|NAME@DIGEST KEY=VALUE … [--remove KEY]`: change an artifact's
labels after its push, without changing its digest (docs/artifacts.md, "Labels after
the push"). Registered on the main CLI by `register`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from arca.cli_options import DEFAULT_REGISTRY, Json, PlainHttp, RegistryUrl, Timeout


def register(app: typer.Typer) -> None:
    app.command("label")(label)


def label(
    target: Annotated[
        str, typer.Argument(help="NAME:TAG or NAME@DIGEST to label.", metavar="TARGET")
    ],
    changes: Annotated[
        list[str] | None,
        typer.Argument(help="Labels to set, KEY=VALUE.", metavar="KEY=VALUE…"),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", "-r", help="A label key to remove (repeatable).", metavar="KEY"),
    ] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """Set or remove labels of an artifact after its push (the digest does not
    change): `arca ls --label`, `arca latest --label` and retention see them at once."""
    from arca import cli

    name, reference = cli._target(target, reference=True)
    assert reference is not None
    labels = cli._labels(changes)
    removed = list(dict.fromkeys(remove or []))
    for key in removed:
        if not cli._LABEL_KEY.fullmatch(key):
            raise typer.BadParameter(f"invalid label key {key!r}", param_hint="--remove")
        if key in labels:
            raise typer.BadParameter(f"label {key!r} is both set and removed")
    if not labels and not removed:
        raise typer.BadParameter("give KEY=VALUE labels to set or --remove KEY")
    with cli._errors(as_json), cli._connect(registry, plain_http, timeout) as client:
        result = client.label(name, cli._resolved(client, name, reference), labels, remove=removed)
    if as_json:
        cli._print_json(
            {
                "name": result.name,
                "digest": result.digest,
                "label_digest": result.label_digest,
                "labels": dict(result.labels),
            }
        )
        return
    typer.echo(f"{result.name}@{result.digest}")
    for key, value in sorted(result.labels.items()):
        typer.echo(f"  {key}={value}")
    cli._stderr.print(f"labelled by {result.label_digest}", markup=False)
