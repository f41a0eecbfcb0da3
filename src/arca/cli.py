"""The `arca` command: serve the registry, check a configuration file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from arca.config import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="arca, an OCI artifact registry")


def _settings(config: Path | None, overrides: dict[str, str]) -> Settings:
    environ = {**os.environ, **overrides}
    try:
        return load_settings(environ, config)
    except ConfigError as exc:
        typer.echo(f"arca: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    storage: Annotated[
        Path | None, typer.Option(help="Directory for the filesystem driver's data.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(envvar="ARCA_CONFIG", help="TOML configuration file.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the OCI distribution API (defaults: 127.0.0.1:5000, storage in ./data)."""
    import uvicorn

    overrides = {}
    if host is not None:
        overrides["ARCA_SERVER_HOST"] = host
    if port is not None:
        overrides["ARCA_SERVER_PORT"] = str(port)
    if workers is not None:
        overrides["ARCA_SERVER_WORKERS"] = str(workers)
    if storage is not None:
        overrides["ARCA_STORAGE_DRIVER"] = '"filesystem"'
        overrides["ARCA_STORAGE_FILESYSTEM_ROOT"] = f'"{storage.resolve()}"'
    settings = _settings(config, overrides)
    # Worker processes rebuild the same settings from the environment.
    os.environ.update(overrides)
    if config is not None:
        os.environ["ARCA_CONFIG"] = str(config.resolve())
    uvicorn.run(
        "arca.app:create_app_from_environment",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_level=settings.server.log_level,
        http="httptools",
        loop="uvloop",
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
    )


@app.command("check-config")
def check_config(path: Path) -> None:
    """Validate a configuration file and print the settings it gives."""
    settings = _settings(path, {})
    typer.echo(f"{path}: ok (storage driver {settings.storage.driver})")


def main() -> None:
    app()
