"""The `arca` command: serve the registry, and the artifact workflows for people and CI.

Workflow commands talk to a registry (`--registry`, env ARCA_REGISTRY) through
`arca.client`. Exit codes are a contract scripts rely on (docs/artifacts.md):

    0  success
    1  a negative answer: verification failed, nothing found (latest, pull, rm of
       an unknown reference), downloaded bytes that do not match their digest
    2  usage or configuration error, or a request the registry refuses as invalid
    3  the registry could not be reached, or failed (5xx)

With `--json`, stdout carries one JSON document and nothing else (an error too, as
`{"error": …}`); progress bars and messages go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from arca import label_command, quota_command, retention_commands
from arca.auth import commands as auth_commands
from arca.cli_options import (
    DEFAULT_REGISTRY,
    ConfigFile,
    Json,
    LabelOption,
    PlainHttp,
    RegistryUrl,
    Since,
    StorageDir,
    Timeout,
    Until,
)
from arca.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from arca.client.aio import PushOptions
    from arca.client.sync import ArcaClient

_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH"}


def _help_without_python_types() -> None:
    """typer 0.29 shows each value's Python annotation in help (`<str>`, `<list[Path]>`,
    `<bool>` for a flag); people read `--tag TAG`, `--timeout SECONDS [default: 300.0]`.
    So: an option shows its metavar, else click's type name (TEXT, INTEGER); a flag
    nothing; an argument its name only, and usage lines read `TARGET PATHS...`, not
    `{TARGET} {paths}...`. tests/cli/test_manners.py checks every command's help."""
    core = typer.core

    def option_type(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar) or None
        if self.is_flag:
            return None
        bare = str(self.bare_type()).removeprefix("list[").removesuffix("]")
        return _TYPE_NAMES.get(bare, "VALUE")

    def usage_name(self: Any) -> str:
        name = str(self.metavar or self.name).upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    core.TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    core.TyperOption.display_type = option_type  # type: ignore[method-assign,assignment]
    core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
    core.TyperArgument.display_type = lambda self, ctx: ""  # type: ignore[method-assign]
    core.TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_help_without_python_types()
_HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="arca, an OCI artifact registry",
    context_settings=_HELP,
)
index_app = typer.Typer(
    no_args_is_help=True, help="The artifact index behind `arca ls`.", context_settings=_HELP
)
app.add_typer(index_app, name="index")
auth_commands.register(app)  # arca user …, arca token …, arca login (docs/auth.md)
retention_commands.register(app)  # arca retention …, arca pin, arca pins (docs/lifecycle.md)
quota_command.register(app)  # arca quota (docs/protection.md)
trash_app = typer.Typer(no_args_is_help=True, help="What garbage collection swept, restorable.")
app.add_typer(trash_app, name="trash")

EXIT_OK, EXIT_NEGATIVE, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3

_stderr = Console(stderr=True, soft_wrap=True)
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _version(value: bool) -> None:
    if value:
        from arca import __version__

        typer.echo(f"arca {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """arca, an OCI artifact registry."""


def _settings(config: Path | None, overrides: dict[str, str]) -> Settings:
    environ = {**os.environ, **overrides}
    try:
        return load_settings(environ, config)
    except ConfigError as exc:
        typer.echo(f"arca: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc


def _check_storage(settings: Settings) -> None:
    """Build (and close) the configured driver, so a root that is a file or cannot be
    created is one line and exit 2 before anything binds, and check that the TLS files
    can be read. Never contacts a remote backend."""
    from arca.storage.drivers import load_driver

    try:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
    except ValueError as exc:  # OptionError, DriverUnavailable
        typer.echo(f"arca: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    asyncio.run(driver.close())
    for key in ("tls_cert", "tls_key"):
        path = getattr(settings.server, key)
        if path and not os.access(path, os.R_OK):
            typer.echo(f"arca: server.{key} {path!r} is not a readable file", err=True)
            raise typer.Exit(EXIT_USAGE)


# -- serving ---------------------------------------------------------------------------


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
    log_level: Annotated[
        str | None, typer.Option(help="trace, debug, info, warning, error or critical.")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json (one per line).")] = None,
) -> None:
    """Serve the OCI distribution API (defaults: 127.0.0.1:5000, storage in ./data)."""
    from arca import __version__, processes
    from arca.log import configure

    overrides = _storage_overrides(storage)
    flags = {"HOST": host, "PORT": port, "WORKERS": workers}
    flags |= {"LOG_LEVEL": log_level, "LOG_FORMAT": log_format}
    for key, value in flags.items():
        if value is not None:
            overrides[f"ARCA_SERVER_{key}"] = json.dumps(value)  # a TOML value: never re-typed
    settings = _settings(config, overrides)
    _check_storage(settings)
    server = settings.server
    # The server (or each worker) rebuilds the same settings from the environment.
    os.environ.update(overrides)
    if config is not None:
        os.environ["ARCA_CONFIG"] = str(config.resolve())
    configure(server.log_level, server.log_format, server.access_log)
    logging.getLogger("arca.serve").info(
        "arca %s serving",
        __version__,
        extra={"storage": settings.storage.driver, "workers": server.workers},
    )
    _empty_metrics_directory()
    # This process holds the whole CLI: it becomes a lean server or supervisor (same pid).
    shown = ("host", "port", "log_level", "log_format", "access_log")
    facts: dict[str, Any] = {key: getattr(server, key) for key in shown}
    processes.become(server.workers, facts | {"tls": bool(server.tls_cert)})


def _empty_metrics_directory() -> None:
    """An operator's PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode,
    arca/metrics.py) is emptied first: figures of an earlier run would be added to ours.
    Without one, the supervisor of several workers makes a fresh one (arca/processes.py)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()


def _storage_overrides(storage: Path | None) -> dict[str, str]:
    if storage is None:
        return {}
    return {
        "ARCA_STORAGE_DRIVER": '"filesystem"',
        "ARCA_STORAGE_FILESYSTEM_ROOT": f'"{storage.resolve()}"',
    }


@app.command("check-config")
def check_config(
    path: Annotated[Path, typer.Argument(help="The TOML file; ARCA_* variables apply too.")],
) -> None:
    """Validate a configuration file and print the effective settings (secrets masked).

    Exit 2, with one line naming the key, for anything `arca serve` would refuse."""
    from arca.config import describe

    settings = _settings(path, {})
    _check_storage(settings)
    typer.echo(f"# {path}: ok; effective settings (defaults filled in, secrets masked)")
    typer.echo(describe(settings), nl=False)


@index_app.command("rebuild")
def index_rebuild(
    storage: Annotated[
        Path | None, typer.Option(help="Directory of the filesystem driver's data.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(envvar="ARCA_CONFIG", help="TOML configuration file.")
    ] = None,
    name: Annotated[
        list[str] | None, typer.Option(help="Only this repository (repeatable); default all.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Rewrite the artifact index from the manifests in storage (no server needed)."""
    from arca.app import open_services
    from arca.log import configure

    settings = _settings(config, _storage_overrides(storage))
    configure(settings.server.log_level, settings.server.log_format, access_log=False)

    async def rebuild() -> list[dict[str, Any]]:
        async with open_services(settings) as services:
            index = services.control.index
            reports = (
                [await index.rebuild(repository) for repository in name]
                if name
                else await index.rebuild_all()
            )
        return [{"name": r.name, "entries": r.entries, "removed": r.removed} for r in reports]

    try:
        reports = asyncio.run(rebuild())
    except Exception as error:  # storage unreachable or refusing: say so, exit 3
        _fail(as_json, EXIT_SERVER, "STORAGE", f"rebuild failed: {error}")
    if as_json:
        _print_json({"repositories": reports})
        return
    for report in reports:
        typer.echo(
            f"{report['name']}: {_plural(report['entries'], 'artifact')} indexed,"
            f" {_plural(report['removed'], 'stale object')} removed"
        )
    _stderr.print(f"rebuilt the index of {_plural(len(reports), 'repository', 'repositories')}")


# -- lifecycle: gc, trash, scrub (against storage, like `index rebuild`) ---------------

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _offline(settings: Settings, work: Callable[[Any], Any]) -> Any:
    """Run `work(registry)` on services wired over the configured storage (the
    artifact index and tag memory attached, as in the server), then close."""
    from arca.control.artifacts import ArtifactControl
    from arca.events.log import EventLog
    from arca.lifecycle.trash import DeletedTags
    from arca.registry.events import acting_as
    from arca.registry.registry import Registry
    from arca.storage.drivers import load_driver

    async def run() -> Any:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
        try:
            registry = Registry(driver, settings)
            if settings.events.enabled:  # offline changes (gc, restore) are recorded too
                registry.events.record = EventLog(driver, settings.events.source)
            ArtifactControl.attach(registry)
            registry.events.followers.append(DeletedTags(driver))
            with acting_as(_local_actor()):  # gc, restore, purge, scrub name who ran them
                return await work(registry)
        finally:
            await driver.close()

    return asyncio.run(run())


def _local_actor() -> str | None:
    """`local:<login>`: the operating-system user who ran a command against storage."""
    import getpass

    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return None


@contextmanager
def _phases(enabled: bool) -> Iterator[Callable[[str, int, int | None], None] | None]:
    """A progress bar on stderr that follows (phase, done, total) callbacks."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"))
    with Progress(*columns, console=_stderr, transient=True) as bar:
        task = bar.add_task("", total=None)
        yield lambda phase, done, total: bar.update(
            task, description=phase, completed=done, total=total
        )


@app.command("gc")
def gc(
    storage: StorageDir = None,
    config: ConfigFile = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be swept; change nothing.")
    ] = False,
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write one JSON line per object judged (live, swept, kept, with its reason).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Collect garbage now: sweep what no tag (or retention rule) keeps into the trash."""
    from arca.lifecycle.gc import Collector, CollectorBusy

    settings = _settings(config, _storage_overrides(storage))
    with _phases(not as_json) as progress, contextlib.ExitStack() as files:
        lines = (
            files.enter_context(report_file.open("w", encoding="utf-8"))
            if report_file is not None
            else None
        )

        async def work(registry: Any) -> Any:
            collector = Collector(registry, settings, progress=progress)
            return await collector.run(dry_run=dry_run, lines=lines)

        try:
            report = _offline(settings, work)
        except CollectorBusy:
            _fail(as_json, EXIT_SERVER, "BUSY", "another garbage collection is running")
        except Exception as error:
            _fail(as_json, EXIT_SERVER, "STORAGE", f"gc failed: {error}")
    if as_json:
        _print_json(report.to_json())
        return
    verb = "would sweep" if dry_run else "swept"
    for candidate in report.swept:
        where = f"{candidate.name} " if candidate.name else ""
        typer.echo(f"{verb} {candidate.kind} {where}{candidate.digest} ({candidate.rule})")
    for candidate in report.kept:
        typer.echo(f"kept {candidate.kind} {candidate.digest} ({candidate.reason})")
    for reason, count in sorted(report.live.items()):
        typer.echo(f"live: {count} {reason}")
    _stderr.print(
        f"{verb} {len(report.swept)} objects, {decimal(report.bytes_swept)}"
        + ("" if dry_run else " (to the trash)")
    )


def _duration(value: str) -> int:
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise typer.BadParameter(f"{value!r} is not a duration like 3600, 90m, 12h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


@trash_app.command("ls")
def trash_ls(storage: StorageDir = None, config: ConfigFile = None, as_json: Json = False) -> None:
    """List the trash: what was swept, when, by which run and rule."""
    settings = _settings(config, _storage_overrides(storage))

    async def work(registry: Any) -> Any:
        from arca.lifecycle.trash import Trash

        return [record async for record in Trash(registry).records()]

    records = _offline(settings, work)
    if as_json:
        _print_json({"items": [record.to_json() for record in records]})
        return
    table = Table("id", "kind", "repository", "digest", "size", "swept", "rule", box=None)
    for record in records:
        swept = datetime.fromtimestamp(record.swept_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            record.id,
            record.kind,
            record.name or "",
            str(record.digest),
            decimal(record.size),
            swept,
            record.rule,
        )
    Console(soft_wrap=True).print(table)


@trash_app.command("restore")
def trash_restore(
    target: Annotated[str, typer.Argument(help="A trash id, or a digest (all its items).")],
    storage: StorageDir = None,
    config: ConfigFile = None,
    as_json: Json = False,
) -> None:
    """Put swept objects back; a manifest comes back with its tags and its blobs."""
    from arca.lifecycle.trash import Trash, TrashUnknown

    settings = _settings(config, _storage_overrides(storage))

    async def work(registry: Any) -> Any:
        return await Trash(registry).restore(target)

    try:
        restored = _offline(settings, work)
    except TrashUnknown:
        _fail(as_json, EXIT_NEGATIVE, "NOT_FOUND", f"nothing in the trash is {target}")
    if as_json:
        _print_json({"restored": [record.to_json() for record in restored]})
        return
    for record in restored:
        tags = f" with tags {', '.join(record.tags)}" if record.tags else ""
        typer.echo(f"restored {record.kind} {record.name or ''} {record.digest}{tags}")


@trash_app.command("purge")
def trash_purge(
    storage: StorageDir = None,
    config: ConfigFile = None,
    older_than: Annotated[
        str | None,
        typer.Option(help="Only items swept longer ago (3600, 90m, 12h, 7d); default: retention."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Delete trash items for good."""
    import time

    from arca.lifecycle.trash import Trash

    settings = _settings(config, _storage_overrides(storage))
    age = settings.trash.retention_seconds if older_than is None else _duration(older_than)

    async def work(registry: Any) -> Any:
        return await Trash(registry).purge(age, time.time())

    purged = _offline(settings, work)
    if as_json:
        _print_json({"purged": [record.to_json() for record in purged]})
        return
    _stderr.print(f"purged {len(purged)} items, {decimal(sum(r.size for r in purged))}")


@app.command("scrub")
def scrub(
    storage: StorageDir = None,
    config: ConfigFile = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Start over instead of resuming a stopped scrub.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Re-hash every blob; quarantine corrupt ones so they answer 404, not wrong bytes."""
    from arca.lifecycle.scrub import Scrubber

    settings = _settings(config, _storage_overrides(storage))
    with _phases(not as_json) as progress:

        async def work(registry: Any) -> Any:
            return await Scrubber(registry, progress=progress).run(restart=restart)

        try:
            report = _offline(settings, work)
        except Exception as error:
            _fail(as_json, EXIT_SERVER, "STORAGE", f"scrub failed: {error}")
    if as_json:
        _print_json(report.to_json())
    else:
        for finding in report.corrupt:
            typer.echo(f"corrupt {finding.digest} (reads as {finding.actual}), quarantined")
        _stderr.print(
            f"scrubbed {report.blobs} blobs, {decimal(report.bytes)}: {len(report.corrupt)} corrupt"
        )
    if report.corrupt:
        raise typer.Exit(EXIT_NEGATIVE)


_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _labels(values: list[str] | None) -> dict[str, str]:
    """`-l KEY=VALUE`s; a key given twice is refused, never collapsed into one of them
    (a delete by label that silently kept only the last value would delete the wrong run)."""
    labels: dict[str, str] = {}
    for value in values or []:
        key, separator, label = value.partition("=")
        if not separator:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--label")
        if not _LABEL_KEY.fullmatch(key):
            raise typer.BadParameter(
                f"invalid label key {key!r}: a letter or digit, then letters, digits,"
                " '.', '_' or '-', at most 128 characters",
                param_hint="--label",
            )
        if key in labels:
            raise typer.BadParameter(
                f"label {key!r} is given twice ({labels[key]!r} and {label!r}); give each key once",
                param_hint="--label",
            )
        labels[key] = label
    return labels


def _target(value: str, *, reference: bool | None, hint: str = "TARGET") -> tuple[str, str | None]:
    """NAME, NAME:TAG, NAME@DIGEST or NAME@<short digest>. `reference`: True required,
    False refused. A short digest comes back as `sha256:<prefix>` (see `_resolved`)."""
    from arca.client.errors import UsageError
    from arca.client.reference import ArtifactRef

    try:
        ref = ArtifactRef.parse(value, default_tag="")
    except UsageError as error:
        raise typer.BadParameter(error.message, param_hint=hint) from None
    found = ref.digest or ref.tag or None
    if ref.digest is not None and ref.is_short and not ref.digest.startswith("sha256:"):
        found = f"sha256:{ref.digest}"
    if reference and found is None:
        raise typer.BadParameter(f"{value!r} names no artifact: add :TAG or @DIGEST")
    if reference is False and found is not None:
        raise typer.BadParameter(f"{value!r}: give a repository name only")
    return ref.name, found


def _registry_url(value: str, plain_http: bool) -> str:
    """A URL as it is; HOST[:PORT] as oras, skopeo and crane take it: http for loopback
    (127.0.0.0/8, ::1, localhost) or with --plain-http, https otherwise."""
    import ipaddress

    if "://" in value:
        return value
    host = value.split("/", 1)[0]
    hostname = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        loopback = ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        loopback = hostname.lower() in _LOOPBACK_NAMES
    return f"{'http' if plain_http or loopback else 'https'}://{value}"


def _when(value: str | None, hint: str) -> datetime | None:
    """A duration ago (`30m`, `12h`, `7d`, `2w`) or an ISO 8601 time (UTC by default)."""
    if value is None:
        return None
    match = _DURATION.fullmatch(value)
    if match is not None:
        return datetime.now(UTC) - timedelta(seconds=int(match[1]) * _DURATION_UNITS[match[2]])
    return _time(value, hint)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {plural or word + 's'}"


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """The client's errors as an exit code and one message (JSON with --json)."""
    from arca.client import errors

    try:
        yield
    except errors.NotFound as error:
        _fail(as_json, EXIT_NEGATIVE, error.code, error.message)
    except errors.IntegrityError as error:
        _fail(as_json, EXIT_NEGATIVE, "INTEGRITY", error.message)
    except errors.UnsafeArtifact as error:
        _fail(as_json, EXIT_NEGATIVE, "UNSAFE_ARTIFACT", error.message)
    except errors.LocalFileError as error:
        _fail(as_json, EXIT_USAGE, "LOCAL_FILE", error.message)
    except errors.TagExists as error:
        _fail(as_json, EXIT_USAGE, "TAG_EXISTS", error.message)
    except errors.RequestRejected as error:
        _fail(as_json, EXIT_USAGE, error.code, error.message)
    except errors.UsageError as error:
        _fail(as_json, EXIT_USAGE, "USAGE", error.message)
    except errors.ResponseError as error:
        _fail(as_json, EXIT_SERVER, error.code, error.message)
    except errors.TransportError as error:
        _fail(as_json, EXIT_SERVER, "UNREACHABLE", error.message)
    except errors.ArcaError as error:
        _fail(as_json, EXIT_SERVER, "ERROR", error.message)


def _fail(as_json: bool, exit_code: int, code: str, message: str) -> NoReturn:
    if as_json:
        _print_json({"error": {"code": code, "message": message}, "exit_code": exit_code})
    else:
        _stderr.print(f"arca: {message}", markup=False, highlight=False)
    raise typer.Exit(exit_code)


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


class _Bars:
    """Rich progress bars on stderr, one per phase, fed by (done, total) callbacks;
    nothing at all when they are off (`--json`, or stderr is not a terminal)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def phase(self, description: str) -> Callable[[int, int], None] | None:
        bar = self._progress
        if bar is None:
            return None
        task = bar.add_task(description, total=None)
        return lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def _progress(enabled: bool) -> Iterator[_Bars]:
    if not enabled or not _stderr.is_terminal:
        yield _Bars(None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_stderr, transient=True) as bar:
        yield _Bars(bar)


def _time(value: str, hint: str = "--created") -> datetime:
    """ISO 8601; without an offset it is UTC, so a CI script means the same anywhere."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=hint) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _client(registry: str, timeout: float) -> ArcaClient:
    # Imported here: `arca serve` and `arca index` need none of the client.
    from arca.client.sync import ArcaClient

    return ArcaClient(registry, timeout=timeout)


def _connect(registry: str, plain_http: bool, timeout: float) -> ArcaClient:
    return _client(_registry_url(registry, plain_http), timeout)


def _resolved(client: ArcaClient, name: str, reference: str) -> str:
    """A short digest completed by the registry; a tag or full digest as it is."""
    from arca.client.reference import SHORT_DIGEST, ArtifactRef

    if reference.startswith("sha256:") and SHORT_DIGEST.fullmatch(reference):
        return client.resolve(ArtifactRef(name, digest=reference)).reference
    return reference


def _paths_and_types(values: list[str]) -> tuple[list[Path], dict[str, str]]:
    """PATH or FILE:TYPE (as oras takes a file's media type); {artifact path: type}."""
    from arca.client._files import MEDIA_TYPE

    paths: list[Path] = []
    types: dict[str, str] = {}
    for value in values:
        path = Path(value)
        if not path.exists() and ":" in value:
            file, _, media_type = value.rpartition(":")
            if Path(file).is_file() and MEDIA_TYPE.fullmatch(media_type):
                path = Path(file)
                types[path.name] = media_type
        if not path.exists():
            raise typer.BadParameter(f"{value}: no such file or directory", param_hint="PATHS")
        paths.append(path)
    return paths, types


# -- workflow commands -----------------------------------------------------------------


@app.command()
def push(
    target: Annotated[
        str, typer.Argument(help="NAME or NAME:TAG (no tag: one is generated).", metavar="TARGET")
    ],
    paths: Annotated[
        list[str],
        typer.Argument(help="Files (FILE or FILE:MEDIA_TYPE), or one directory.", metavar="PATHS"),
    ],
    label: LabelOption = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Another tag (repeatable).", metavar="TAG")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Move a tag that already names another artifact.")
    ] = False,
    subject: Annotated[
        str | None,
        typer.Option(
            help="The artifact this one is about (NAME@DIGEST or @DIGEST in the same"
            " repository): a report, SBOM or verdict listed by `arca referrers`.",
            metavar="REF",
        ),
    ] = None,
    artifact_type: Annotated[
        str | None,
        typer.Option(help="The manifest's artifactType (default: arca's).", metavar="TYPE"),
    ] = None,
    title: Annotated[
        str | None, typer.Option(help="Artifact name (default: NAME).", metavar="TEXT")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            help="Artifact version (default: TAG; none for a generated tag).", metavar="TEXT"
        ),
    ] = None,
    created: Annotated[
        str | None,
        typer.Option(
            help="Creation time, ISO 8601 (default: now; UTC unless an offset is given);"
            " it orders `ls` and `latest`.",
            metavar="TIME",
        ),
    ] = None,
    metadata: Annotated[
        str | None, typer.Option(help="Free metadata, as JSON.", metavar="JSON")
    ] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 300.0,
    as_json: Json = False,
) -> None:
    """Push files, or a directory kept whole (empty directories, executable bits, symlinks),
    as one artifact with labels.

    Without a tag the artifact is tagged [<template_id>-]<UTC time>-<12 hex of its
    digest>. A tag already naming another artifact is refused unless --force."""
    name, tag_ = _target(target, reference=None)
    if tag_ is not None and ":" in tag_:
        raise typer.BadParameter("push to NAME or NAME:TAG; the digest is computed")
    labels = _labels(label)
    local, media_types = _paths_and_types(paths)
    directory = len(local) == 1 and local[0].is_dir()
    if not directory and any(path.is_dir() for path in local):
        raise typer.BadParameter("give files, or one directory alone", param_hint="PATHS")
    if directory and media_types:
        raise typer.BadParameter("FILE:TYPE names a file, not a directory", param_hint="PATHS")
    try:
        meta = None if metadata is None else json.loads(metadata)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--metadata") from None
    options: PushOptions = {
        "tag": tag_,
        "tags": tag or (),
        "generate_tag": tag_ is None,
        "force": force,
        "labels": labels,
        "title": title,
        "version": version,
        "created": None if created is None else _time(created),
        "metadata": meta,
        "subject": None
        if subject is None
        else (f"{name}{subject}" if subject.startswith("@") else subject),
        "artifact_type": artifact_type,
    }
    with (
        _errors(as_json),
        _connect(registry, plain_http, timeout) as client,
        _progress(not as_json) as bars,
    ):
        options["hash_progress"] = bars.phase(f"hashing {target}")
        if directory:
            prepared = client.prepare_directory(name, local[0], **options)
        else:
            prepared = client.prepare_files(name, local, media_types=media_types, **options)
        prepared = dataclasses.replace(prepared, progress=bars.phase(f"push {name}"))
        result = client.push_prepared(prepared)
    files: list[dict[str, Any]] = [
        {
            "path": f.path,
            "media_type": f.media_type,
            "size": f.size,
            "sha256": str(f.sha256),
            "blake3": str(f.blake3),
        }
        for f in result.artifact.files
    ]
    if as_json:
        _print_json(
            {
                "name": name,
                "digest": result.digest,
                "tags": list(result.tags),
                "labels": dict(result.artifact.labels),
                "files": files,
                "uploaded": result.uploaded,
                "skipped": result.skipped,
            }
        )
        return
    size = sum(f["size"] for f in files)
    typer.echo(f"{name}@{result.digest}")
    tags = f"; {'tag' if len(result.tags) == 1 else 'tags'} {', '.join(result.tags)}"
    _stderr.print(
        f"pushed {_plural(len(files), 'file')} ({decimal(size)}): {result.uploaded} uploaded,"
        f" {result.skipped} already there" + (tags if result.tags else ""),
        markup=False,
    )


@app.command()
def pull(
    target: Annotated[
        str,
        typer.Argument(
            help="NAME:TAG, NAME@DIGEST (12 hex digits as `ls` prints do), or NAME with --label.",
            metavar="TARGET",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write to.", metavar="DIR")
    ] = Path(),
    to_stdout: Annotated[
        bool,
        typer.Option(
            "--stdout",
            help="Write one file's bytes to stdout (the only file, or --path); checked as"
            " it streams: on a mismatch the exit code is 1 and what was written is bad.",
        ),
    ] = False,
    path: Annotated[
        str | None, typer.Option(help="The file to write with --stdout.", metavar="PATH")
    ] = None,
    label: LabelOption = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 300.0,
    as_json: Json = False,
) -> None:
    """Download an artifact's files, each checked (sha256, blake3) as it arrives; a
    directory comes back whole.

    Without a reference, the newest artifact carrying every --label."""
    name, reference = _target(target, reference=None)
    labels = _labels(label)
    if to_stdout and as_json:
        raise typer.BadParameter("--stdout writes the file itself; it cannot be --json")
    if path is not None and not to_stdout:
        raise typer.BadParameter("--path chooses the file for --stdout", param_hint="--path")
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        if reference is None:
            reference = client.latest(name, labels).digest
        elif labels:
            raise typer.BadParameter("give a reference or --label, not both")
        reference = _resolved(client, name, reference)
        if to_stdout:
            out = sys.stdout.buffer
            one = client.pull_file_to(name, reference, out.write, path=path)
            out.flush()
            _stderr.print(f"pulled {one.path} of {name}@{reference}", markup=False)
            return
        with _progress(not as_json) as bars:
            result = client.pull(name, reference, output, progress=bars.phase(f"pull {name}"))
    files = [
        {"path": f.path, "written_to": str(p), "size": f.size, "sha256": str(f.sha256)}
        for f, p in zip(result.artifact.files, result.paths, strict=True)
    ]
    if as_json:
        _print_json({"name": name, "digest": result.digest, "files": files})
        return
    for file in files:
        typer.echo(file["written_to"])
    extras = [
        _plural(count, word, plural)
        for count, word, plural in (
            (len(result.artifact.directories), "directory", "directories"),
            (len(result.artifact.links), "link", None),
        )
        if count
    ]
    _stderr.print(
        f"pulled {name}@{result.digest}: {_plural(len(files), 'file')}"
        + (f" ({', '.join(extras)})" if extras else ""),
        markup=False,
    )


@app.command("ls")
def list_artifacts(
    name: Annotated[str, typer.Argument(help="Repository name.", metavar="NAME")],
    label: LabelOption = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[
        int,
        typer.Option(min=1, help="Most artifacts to show (with --all: per request).", metavar="N"),
    ] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    cursor: Annotated[
        str | None, typer.Option(help="Start after this page cursor.", metavar="CURSOR")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each artifact's files too.")
    ] = False,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """List a repository's artifacts, newest first, filtered by labels and creation time.

    Marks: `run` is the last run (the newest artifact matching the filters), `pass` the
    last pass (the newest of those with status=pass)."""
    _target(name, reference=False, hint="NAME")
    labels = _labels(label)
    window = {"since": _when(since, "--since"), "until": _when(until, "--until")}
    records: dict[str, Any] = {}
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        if all_pages:
            found = list(client.iter_artifacts(name, labels, page_size=min(limit, 1000), **window))
            next_cursor = None
        else:
            page = client.list(name, labels, limit=limit, cursor=cursor, **window)
            found, next_cursor = page.artifacts, page.cursor
        marks = _marks(client, name, labels, window, found, first_page=cursor is None)
        if verbose:
            records = {a.digest: client.get(name, a.digest) for a in found}
    count, size = len(found), sum(artifact.size for artifact in found)
    if as_json:
        listed = []
        for artifact in found:
            entry = dict(artifact.raw)
            entry["marks"] = marks.get(artifact.digest, [])
            if verbose:
                entry["files"] = [dict(f) for f in records[artifact.digest].raw["files"]]
            listed.append(entry)
        _print_json(
            {"name": name, "artifacts": listed, "cursor": next_cursor, "count": count, "size": size}
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("CREATED", "DIGEST", "TAGS", "LABELS", "SIZE", "FILES", "MARK"):
        table.add_column(column, no_wrap=column != "LABELS")
    for artifact in found:
        table.add_row(
            artifact.created.strftime("%Y-%m-%d %H:%M:%S"),
            artifact.digest.removeprefix("sha256:")[:12],
            ",".join(artifact.tags),
            " ".join(f"{k}={v}" for k, v in artifact.labels.items()),
            decimal(artifact.size),
            str(artifact.file_count),
            ",".join(marks.get(artifact.digest, [])),
        )
        if verbose:
            for file in records[artifact.digest].files:
                table.add_row("", "", f"  {file.path}", file.media_type, decimal(file.size), "", "")
    # Not a terminal: wide enough that no column is cut (scripts should use --json).
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(table, markup=False, highlight=False)
    shown = f"{_plural(count, 'artifact')}, {decimal(size)}"
    out.print(
        shown + (" on this page" if next_cursor else "") + _legend(marks),
        markup=False,
        highlight=False,
    )
    if next_cursor:
        _stderr.print(f"more: --cursor {next_cursor}", markup=False)


_MARKS = {"run": "last run", "pass": "last pass (status=pass)", "pin": "pinned (arca pins)"}
"""Row marks of `arca ls`, in legend order."""


def _marks(
    client: ArcaClient,
    name: str,
    labels: dict[str, str],
    window: dict[str, datetime | None],
    found: list[Any],
    *,
    first_page: bool,
) -> dict[str, list[str]]:
    """Digest → marks for the listed artifacts (at most three requests more)."""
    from arca.client.errors import NotFound

    marks: dict[str, list[str]] = {}
    if not found:
        return marks
    newest = found[0].digest if first_page else None
    if newest is None:
        with contextlib.suppress(NotFound):
            newest = client.latest(name, labels, **window).digest
    if newest is not None:
        marks.setdefault(newest, []).append("run")
    if labels.get("status", "pass") == "pass":
        with contextlib.suppress(NotFound):
            passed = client.latest(name, {**labels, "status": "pass"}, **window).digest
            marks.setdefault(passed, []).append("pass")
    with contextlib.suppress(NotFound):  # a registry without pins (older arca)
        pinned = {pin["reference"] for pin in client.pins(name)}
        for artifact in found:
            if artifact.digest in pinned or pinned & set(artifact.tags):
                marks.setdefault(artifact.digest, []).append("pin")
    return marks


def _legend(marks: dict[str, list[str]]) -> str:
    used = {mark for row in marks.values() for mark in row}
    return "".join(f"; {mark}: {meaning}" for mark, meaning in _MARKS.items() if mark in used)


@app.command()
def latest(
    name: Annotated[str, typer.Argument(help="Repository name.", metavar="NAME")],
    label: LabelOption = None,
    since: Since = None,
    until: Until = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """The newest artifact carrying every --label (exit 1 if there is none)."""
    _target(name, reference=False, hint="NAME")
    labels = _labels(label)
    window = {"since": _when(since, "--since"), "until": _when(until, "--until")}
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        found = client.latest(name, labels, **window)
    if as_json:
        _print_json(dict(found.raw))
        return
    typer.echo(f"{name}@{found.digest}")
    details = [found.created.isoformat(), *(f"{k}={v}" for k, v in found.labels.items())]
    if found.tags:
        details.append(f"tags {','.join(found.tags)}")
    _stderr.print("  ".join(details), markup=False)


@app.command()
def show(
    target: Annotated[str, typer.Argument(help="NAME:TAG or NAME@DIGEST.", metavar="TARGET")],
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """One artifact's record: tags, digests, labels, files, size, created time."""
    name, reference = _target(target, reference=True)
    assert reference is not None
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        record = client.get(name, _resolved(client, name, reference))
    if as_json:
        _print_json(dict(record.raw))
        return
    typer.echo(f"{name}@{record.digest}")
    typer.echo(f"  created  {record.created.isoformat()} ({record.created_source})")
    typer.echo(f"  tags     {', '.join(record.tags) or '-'}")
    typer.echo(f"  labels   {' '.join(f'{k}={v}' for k, v in record.labels.items()) or '-'}")
    typer.echo(f"  size     {decimal(record.size)} in {_plural(len(record.files), 'file')}")
    for file in record.files:
        typer.echo(f"    {file.path}  {decimal(file.size)}  {file.sha256}")


@app.command()
def verify(
    target: Annotated[
        str, typer.Argument(help="NAME:TAG, NAME@DIGEST, or NAME (+ --label).", metavar="TARGET")
    ],
    label: LabelOption = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 600.0,
    as_json: Json = False,
) -> None:
    """Have the registry re-hash an artifact's blobs (sha256 and blake3); exit 1 on any mismatch.

    Without a reference: every artifact of NAME carrying all --label."""
    name, reference = _target(target, reference=None)
    labels = _labels(label)
    if reference is not None and labels:
        raise typer.BadParameter("give a reference or --label, not both")
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        if reference is not None:
            digests = [_resolved(client, name, reference)]
        else:
            digests = [a.digest for a in client.iter_artifacts(name, labels, page_size=1000)]
        results = [client.verify(name, digest) for digest in digests]
    if not results:
        _fail(as_json, EXIT_NEGATIVE, "MANIFEST_UNKNOWN", f"no artifact of {name} to verify")
    ok = all(result.ok for result in results)
    if as_json:
        _print_json({"ok": ok, "results": [dict(result.raw) for result in results]})
    else:
        for result in results:
            if result.ok:
                blobs = _plural(len(result.checks), "blob")
                typer.echo(f"ok      {name}@{result.digest} ({blobs})")
                continue
            typer.echo(f"FAILED  {name}@{result.digest}")
            for line in result.failures:
                typer.echo(f"  {line}")
        if not ok:
            failed = sum(not result.ok for result in results)
            _stderr.print(f"verification failed: {failed} of {_plural(len(results), 'artifact')}")
    raise typer.Exit(EXIT_OK if ok else EXIT_NEGATIVE)


@app.command("rm")
def remove(
    target: Annotated[
        str,
        typer.Argument(help="NAME:TAG or NAME@DIGEST, or NAME with --label.", metavar="TARGET"),
    ],
    label: LabelOption = None,
    since: Since = None,
    until: Until = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 300.0,
    as_json: Json = False,
) -> None:
    """Delete artifacts: the manifest and every tag on it (NAME:TAG deletes the artifact
    that tag names, not just the tag: `arca untag` removes one tag only).

    With --label: every artifact carrying all the labels (and created in --since/--until)."""
    name, reference = _target(target, reference=None)
    labels = _labels(label)
    if (reference is None) == (not labels):
        raise typer.BadParameter("give NAME:TAG or NAME@DIGEST, or NAME with --label")
    if reference is not None and (since or until):
        raise typer.BadParameter("--since and --until go with --label")
    window = {"since": _when(since, "--since"), "until": _when(until, "--until")}
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        if reference is not None:
            deleted = [client.delete(name, _resolved(client, name, reference))]
        else:
            deleted = client.delete_by_label(name, labels, **window)
    if as_json:
        _print_json({"name": name, "deleted": deleted})
        return
    for digest in deleted:
        typer.echo(f"{name}@{digest}")
    _stderr.print(f"deleted {_plural(len(deleted), 'artifact')}", markup=False)


@app.command("tag")
def tag_artifact(
    source: Annotated[
        str, typer.Argument(help="NAME:TAG or NAME@DIGEST to tag.", metavar="SOURCE")
    ],
    new_tags: Annotated[list[str], typer.Argument(help="The new tags.", metavar="TAGS")],
    force: Annotated[
        bool, typer.Option("--force", help="Move a tag that already names another artifact.")
    ] = False,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """Give an artifact more tags (as `oras tag` does; the digest does not change)."""
    from arca.errors import RegistryError
    from arca.formats.reference import validate_tag

    name, reference = _target(source, reference=True, hint="SOURCE")
    assert reference is not None
    for new in new_tags:
        try:
            validate_tag(new)
        except RegistryError as error:
            raise typer.BadParameter(error.message, param_hint="TAGS") from None
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        reference = _resolved(client, name, reference)
        digest = ""
        for new in new_tags:
            digest = client.tag(name, reference, new, force=force)
    if as_json:
        _print_json({"name": name, "digest": digest, "tags": new_tags})
        return
    for new in new_tags:
        typer.echo(f"{name}:{new}")
    _stderr.print(f"tagged {name}@{digest}", markup=False)


@app.command()
def untag(
    target: Annotated[str, typer.Argument(help="NAME:TAG to remove.", metavar="TARGET")],
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """Remove one tag; the artifact stays (by digest and its other tags)."""
    name, reference = _target(target, reference=True)
    if reference is None or reference.startswith("sha256:") or "@" in target:
        raise typer.BadParameter("untag takes NAME:TAG (rm deletes an artifact by digest)")
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        digest = client.untag(name, reference)
    if as_json:
        _print_json({"name": name, "tag": reference, "digest": digest})
        return
    typer.echo(f"{name}@{digest}")
    _stderr.print(f"removed tag {reference}; the artifact stays", markup=False)


@app.command()
def referrers(
    target: Annotated[
        str, typer.Argument(help="NAME@DIGEST or NAME:TAG of the subject.", metavar="TARGET")
    ],
    artifact_type: Annotated[
        str | None, typer.Option(help="Only referrers of this artifactType.", metavar="TYPE")
    ] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """The artifacts attached to one (pushed with --subject): reports, SBOMs, verdicts."""
    name, reference = _target(target, reference=True)
    assert reference is not None
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        subject = _resolved(client, name, reference)
        found = client.referrers(name, subject, artifact_type=artifact_type)
    if as_json:
        _print_json(
            {
                "name": name,
                "subject": subject,
                "referrers": [
                    {
                        "digest": r.digest,
                        "media_type": r.media_type,
                        "artifact_type": r.artifact_type,
                        "size": r.size,
                        "annotations": dict(r.annotations),
                    }
                    for r in found
                ],
            }
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("DIGEST", "ARTIFACT TYPE", "TITLE", "LABELS"):
        table.add_column(column, no_wrap=column != "LABELS")
    for referrer in found:
        notes = referrer.annotations
        table.add_row(
            referrer.digest.removeprefix("sha256:")[:12],
            referrer.artifact_type or referrer.media_type,
            notes.get("org.opencontainers.image.title", ""),
            " ".join(
                f"{k.removeprefix('dev.arca.label.')}={v}"
                for k, v in sorted(notes.items())
                if k.startswith("dev.arca.label.")
            ),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table, markup=False, highlight=False)
    _stderr.print(f"{_plural(len(found), 'referrer')} of {name}@{subject}", markup=False)


@app.command()
def repos(
    registry: RegistryUrl = DEFAULT_REGISTRY,
    plain_http: PlainHttp = False,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """The registry's repositories (its catalog), one name a line."""
    with _errors(as_json), _connect(registry, plain_http, timeout) as client:
        names = client.repositories()
    if as_json:
        _print_json({"repositories": names})
        return
    for name in names:
        typer.echo(name)
    _stderr.print(_plural(len(names), "repository", "repositories"))


# -- the event log ------------------------------------------------------------------

events_app = typer.Typer(help="The event log: every change, in order; webhooks.")
app.add_typer(events_app, name="events")


def _event_line(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "")).removeprefix("dev.arca.")
    return f"{event['id']}  {event.get('time', '')}  {kind:<17} {event.get('subject', '')}"


@events_app.callback(invoke_without_command=True)
def events(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing events as they happen.")
    ] = False,
    after: Annotated[
        str | None, typer.Option(help="Start after this event id (default: the oldest).")
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only this type, e.g. manifest.pushed (repeatable)."),
    ] = None,
    repository: Annotated[
        list[str] | None,
        typer.Option("--repository", "-r", help="Only repositories matching this glob."),
    ] = None,
    limit: Annotated[int | None, typer.Option("-n", min=1, help="At most this many.")] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON document ({events, cursor}); with --follow, JSON lines."
        ),
    ] = False,
) -> None:
    """Print the registry's events in log order (exit 0 at the end of the log)."""
    if ctx.invoked_subcommand is not None:
        return
    from arca.client.events import EventsClient

    types, globs = type_ or [], repository or []
    with _errors(as_json), EventsClient(registry, timeout) as client:
        if follow:
            try:
                for count, event in enumerate(client.follow(after, types, globs), 1):
                    print(json.dumps(event) if as_json else _event_line(event), flush=True)
                    if limit is not None and count == limit:
                        break
            except KeyboardInterrupt:
                pass
            return
        found = list(client.iter_events(after, types, globs, limit))
    if as_json:
        cursor = found[-1]["id"] if found else after
        _print_json({"events": found, "cursor": cursor})
        return
    for event in found:
        typer.echo(_event_line(event))


@events_app.command("dead-letters")
def dead_letters(
    webhook: Annotated[str | None, typer.Argument(help="One webhook (default: every one).")] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """Events a webhook gave up on, with the last error."""
    from arca.client.events import EventsClient

    with _errors(as_json), EventsClient(registry, timeout) as client:
        names = [webhook] if webhook else [hook["name"] for hook in client.webhooks()]
        letters = {name: client.dead_letters(name) for name in names}
    if as_json:
        _print_json({"dead_letters": letters})
        return
    for name, found in letters.items():
        for letter in found:
            event = letter["event"]
            typer.echo(f"{name}  {_event_line(event)}  [{letter['attempts']}x: {letter['error']}]")
    _stderr.print(f"{sum(map(len, letters.values()))} dead letters", markup=False)


@events_app.command("redeliver")
def redeliver(
    webhook: Annotated[str, typer.Argument(help="The webhook.")],
    event_id: Annotated[
        list[str] | None, typer.Option("--id", help="Only this dead letter (repeatable).")
    ] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """Queue a webhook's dead letters (all, or each --id) for delivery again."""
    from arca.client.events import EventsClient

    with _errors(as_json), EventsClient(registry, timeout) as client:
        queued = client.redeliver(webhook, event_id or [])
    if as_json:
        _print_json({"webhook": webhook, "queued": queued})
        return
    _stderr.print(f"queued {len(queued)} events for {webhook}", markup=False)


@events_app.command("webhooks")
def webhooks(
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """Each webhook: where it is in the log, whether it delivers, its dead letters."""
    from arca.client.events import EventsClient

    with _errors(as_json), EventsClient(registry, timeout) as client:
        hooks = client.webhooks()
    if as_json:
        _print_json({"webhooks": hooks})
        return
    for hook in hooks:
        state = "delivering" if hook["delivering"] else "idle"
        typer.echo(
            f"{hook['name']}  {hook['url']}  cursor {hook['cursor'] or '-'}  {state}"
            f"  {hook['dead_letters']} dead letters"
        )


label_command.register(app)  # arca label (docs/artifacts.md)


def main() -> None:
    app()
