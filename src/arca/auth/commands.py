"""`arca user …`: the access commands, registered on the main CLI by `register`.

`arca user add|remove|list` edit the htpasswd file named by `--file` or by the
configuration's `[auth] htpasswd`; a running server picks the change up by itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

user_app = typer.Typer(no_args_is_help=True, help="Users of the htpasswd file ([auth] htpasswd).")

ConfigOption = Annotated[
    Path | None, typer.Option(envvar="ARCA_CONFIG", help="TOML configuration file.")
]
FileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="The htpasswd file (default: [auth] htpasswd).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


def _htpasswd(file: Path | None, config: Path | None) -> Path:
    if file is not None:
        return file
    from arca.config import ConfigError, load_settings

    try:
        settings = load_settings(dict(os.environ), config)
    except ConfigError as exc:
        typer.echo(f"arca: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not settings.auth.htpasswd:
        typer.echo("arca: no htpasswd file: give --file or set [auth] htpasswd", err=True)
        raise typer.Exit(2)
    return Path(settings.auth.htpasswd)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        typer.echo("arca: the password is empty", err=True)
        raise typer.Exit(2)
    return password


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    file: FileOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user, or set a new password for an existing one (bcrypt)."""
    from arca.auth import htpasswd

    path = _htpasswd(file, config)
    if not htpasswd.USER_NAME.fullmatch(name):
        raise typer.BadParameter(
            "letters, digits and . _ @ + - only, starting with a letter or digit",
            param_hint="NAME",
        )
    created = htpasswd.set_user(path, name, _read_password(password_stdin))
    typer.echo(f"{'added' if created else 'updated'} {name} in {path}", err=True)


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="User name.")],
    file: FileOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a user (exit 1 if there is no such user)."""
    from arca.auth import htpasswd

    path = _htpasswd(file, config)
    if not htpasswd.remove_user(path, name):
        typer.echo(f"arca: no user {name} in {path}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name} from {path}", err=True)


@user_app.command("list")
def user_list(file: FileOption = None, config: ConfigOption = None) -> None:
    """The user names, one per line."""
    from arca.auth import htpasswd

    path = _htpasswd(file, config)
    for name in htpasswd.HtpasswdFile(path).names():
        typer.echo(name)
