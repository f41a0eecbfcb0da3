"""The access commands, registered on the main CLI by `register`.

`arca user add|remove|list` edit the htpasswd file named by `--file` or by the
configuration's `[auth] htpasswd`; a running server picks the change up by itself.
`arca login|logout` keep credentials in the docker config file (arca.client.credentials)
and `arca token create|list|revoke` manage robot tokens through a running server.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from arca.cli_options import ConfigFile

user_app = typer.Typer(no_args_is_help=True, help="Users of the htpasswd file ([auth] htpasswd).")

FileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="The htpasswd file (default: [auth] htpasswd).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.command()(login)
    app.command()(logout)


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
    config: ConfigFile = None,
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
    config: ConfigFile = None,
) -> None:
    """Remove a user (exit 1 if there is no such user)."""
    from arca.auth import htpasswd

    path = _htpasswd(file, config)
    if not htpasswd.remove_user(path, name):
        typer.echo(f"arca: no user {name} in {path}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name} from {path}", err=True)


@user_app.command("list")
def user_list(file: FileOption = None, config: ConfigFile = None) -> None:
    """The user names, one per line."""
    from arca.auth import htpasswd

    path = _htpasswd(file, config)
    for name in htpasswd.HtpasswdFile(path).names():
        typer.echo(name)


# -- arca login / logout, arca token … ----------------------------------------------------

token_app = typer.Typer(no_args_is_help=True, help="Robot tokens for CI (docs/auth.md).")

RegistryOption = Annotated[
    str,
    typer.Option(envvar="ARCA_REGISTRY", help="The registry's URL.", metavar="URL"),
]
DEFAULT_REGISTRY = "http://127.0.0.1:5000"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"arca: {message}", err=True)
    return typer.Exit(code)


def _request(registry: str, method: str, path: str, **options: object) -> httpx.Response:
    from arca.client.credentials import auth_for

    try:
        with httpx.Client(base_url=registry.rstrip("/"), timeout=30.0) as client:
            return client.request(method, path, auth=auth_for(registry), **options)  # type: ignore[arg-type]
    except httpx.TransportError as error:
        raise _fail(f"cannot reach {registry}: {error}", 3) from error


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["errors"][0]["message"])
    except (ValueError, KeyError, IndexError, TypeError):
        return f"{response.status_code} {response.reason_phrase}"


def login(
    registry: Annotated[str | None, typer.Argument(help="URL (default: ARCA_REGISTRY).")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Check a user and password with the registry and store them for arca, docker,
    podman, oras and skopeo ($DOCKER_CONFIG/config.json or ~/.docker/config.json)."""
    from arca.client import credentials

    url = registry or os.environ.get("ARCA_REGISTRY") or DEFAULT_REGISTRY
    if "://" not in url:
        url = f"http://{url}"
    user = username or typer.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    try:
        with httpx.Client(timeout=30.0) as client:
            response = client.get(f"{url.rstrip('/')}/v2/", auth=(user, password))
    except httpx.TransportError as error:
        raise _fail(f"cannot reach {url}: {error}", 3) from error
    if response.status_code in (401, 403, 429):
        raise _fail(f"login failed: {_message(response)}", 1)
    if response.status_code != 200:
        raise _fail(f"{url} answered /v2/ with {response.status_code}", 3)
    path = credentials.store(url, user, password)
    typer.echo(f"Login succeeded ({credentials.registry_key(url)}, stored in {path})", err=True)


def logout(
    registry: Annotated[str | None, typer.Argument(help="URL (default: ARCA_REGISTRY).")] = None,
) -> None:
    """Forget the stored credentials for a registry."""
    from arca.client import credentials

    url = registry or os.environ.get("ARCA_REGISTRY") or DEFAULT_REGISTRY
    if not credentials.remove(url):
        raise _fail(f"not logged in to {credentials.registry_key(url)}", 1)
    typer.echo(f"Removed login credentials for {credentials.registry_key(url)}", err=True)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="The robot's name (it signs in as robot$NAME).")],
    repositories: Annotated[
        list[str], typer.Option(help="Repository glob, e.g. 'builds/**' (repeatable).")
    ],
    actions: Annotated[str, typer.Option(help="Comma-separated: pull,push,delete,admin.")],
    expires: Annotated[str, typer.Option(help="30d, 12h, 90m or never.")] = "30d",
    registry: RegistryOption = DEFAULT_REGISTRY,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create a robot token with the stored login; the secret is printed once."""
    body = {
        "name": name,
        "repositories": repositories,
        "actions": [a.strip() for a in actions.split(",") if a.strip()],
        "expires": expires,
    }
    response = _request(registry, "POST", "/api/v1/robots", json=body)
    if response.status_code != 201:
        code = 1 if response.status_code in (401, 403) else 2
        raise _fail(f"token not created: {_message(response)}", code)
    created = response.json()
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    typer.echo(created["secret"])
    typer.echo(
        f"robot {created['username']}: {', '.join(created['actions'])} on"
        f" {', '.join(created['repositories'])}, expires {created['expires'] or 'never'}."
        " The secret above is shown only now.",
        err=True,
    )


@token_app.command("list")
def token_list(
    registry: RegistryOption = DEFAULT_REGISTRY,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """The robots you created (or administer)."""
    response = _request(registry, "GET", "/api/v1/robots")
    if response.status_code != 200:
        raise _fail(f"cannot list tokens: {_message(response)}", 1)
    robots = response.json()["robots"]
    if as_json:
        typer.echo(json.dumps(robots, indent=2))
        return
    for robot in robots:
        typer.echo(
            f"{robot['username']}\t{','.join(robot['actions'])}\t"
            f"{','.join(robot['repositories'])}\texpires {robot['expires'] or 'never'}"
        )


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The robot's name.")],
    registry: RegistryOption = DEFAULT_REGISTRY,
) -> None:
    """Revoke a robot: its secret and every token issued to it stop working."""
    response = _request(registry, "DELETE", f"/api/v1/robots/{name}")
    if response.status_code != 204:
        raise _fail(f"not revoked: {_message(response)}", 1)
    typer.echo(f"revoked robot${name}", err=True)
