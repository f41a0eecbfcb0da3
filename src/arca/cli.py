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
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
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

from arca.auth import commands as auth_commands
from arca.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from arca.client.aio import PushOptions
    from arca.client.sync import ArcaClient

app = typer.Typer(no_args_is_help=True, add_completion=False, help="arca, an OCI artifact registry")
index_app = typer.Typer(no_args_is_help=True, help="The artifact index behind `arca ls`.")
app.add_typer(index_app, name="index")
auth_commands.register(app)  # arca user …, arca token …, arca login (docs/auth.md)
trash_app = typer.Typer(no_args_is_help=True, help="What garbage collection swept, restorable.")
app.add_typer(trash_app, name="trash")

EXIT_OK, EXIT_NEGATIVE, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3
DEFAULT_REGISTRY = "http://127.0.0.1:5000"

_stderr = Console(stderr=True, soft_wrap=True)
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _settings(config: Path | None, overrides: dict[str, str]) -> Settings:
    environ = {**os.environ, **overrides}
    try:
        return load_settings(environ, config)
    except ConfigError as exc:
        typer.echo(f"arca: {exc}", err=True)
        raise typer.Exit(2) from exc


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
) -> None:
    """Serve the OCI distribution API (defaults: 127.0.0.1:5000, storage in ./data)."""
    import uvicorn

    from arca.serving import guarded_protocol

    overrides = _storage_overrides(storage)
    if host is not None:
        overrides["ARCA_SERVER_HOST"] = host
    if port is not None:
        overrides["ARCA_SERVER_PORT"] = str(port)
    if workers is not None:
        overrides["ARCA_SERVER_WORKERS"] = str(workers)
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
        # httptools with the header and body timeouts uvicorn lacks (arca/serving.py).
        http=guarded_protocol(  # type: ignore[arg-type]
            settings.limits.header_timeout_seconds,
            settings.limits.body_timeout_seconds,
            settings.limits.body_min_bytes_per_second,
        ),
        loop="uvloop",
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
        ssl_certfile=settings.server.tls_cert or None,
        ssl_keyfile=settings.server.tls_key or None,
    )


def _storage_overrides(storage: Path | None) -> dict[str, str]:
    if storage is None:
        return {}
    return {
        "ARCA_STORAGE_DRIVER": '"filesystem"',
        "ARCA_STORAGE_FILESYSTEM_ROOT": f'"{storage.resolve()}"',
    }


@app.command("check-config")
def check_config(path: Path) -> None:
    """Validate a configuration file and print the settings it gives."""
    settings = _settings(path, {})
    typer.echo(f"{path}: ok (storage driver {settings.storage.driver})")


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
    from arca.control.artifacts import ArtifactControl
    from arca.registry.registry import Registry
    from arca.storage.drivers import load_driver

    settings = _settings(config, _storage_overrides(storage))

    async def rebuild() -> list[dict[str, Any]]:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
        try:
            index = ArtifactControl.attach(Registry(driver, settings)).index
            reports = (
                [await index.rebuild(repository) for repository in name]
                if name
                else await index.rebuild_all()
            )
        finally:
            await driver.close()
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
            f"{report['name']}: {report['entries']} artifacts indexed,"
            f" {report['removed']} stale objects removed"
        )
    _stderr.print(f"rebuilt the index of {len(reports)} repositories")


# -- lifecycle: gc, trash, scrub (against storage, like `index rebuild`) ---------------

StorageDir = Annotated[Path | None, typer.Option(help="Directory of the filesystem driver's data.")]
ConfigFile = Annotated[
    Path | None, typer.Option(envvar="ARCA_CONFIG", help="TOML configuration file.")
]
_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _offline(settings: Settings, work: Callable[[Any], Any]) -> Any:
    """Run `work(registry)` on services wired over the configured storage (the
    artifact index and tag memory attached, as in the server), then close."""
    from arca.control.artifacts import ArtifactControl
    from arca.lifecycle.trash import DeletedTags
    from arca.registry.registry import Registry
    from arca.storage.drivers import load_driver

    async def run() -> Any:
        driver = load_driver(settings.storage.driver, settings.storage.driver_options())
        try:
            registry = Registry(driver, settings)
            ArtifactControl.attach(registry)
            registry.manifests.listeners.append(DeletedTags(driver))
            return await work(registry)
        finally:
            await driver.close()

    return asyncio.run(run())


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
    as_json: Json = False,
) -> None:
    """Collect garbage now: sweep what no tag (or retention rule) keeps into the trash."""
    from arca.lifecycle.gc import Collector, CollectorBusy

    settings = _settings(config, _storage_overrides(storage))
    with _phases(not as_json) as progress:

        async def work(registry: Any) -> Any:
            return await Collector(registry, settings, progress=progress).run(dry_run=dry_run)

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


# -- workflow options ------------------------------------------------------------------

RegistryUrl = Annotated[
    str,
    typer.Option(
        envvar="ARCA_REGISTRY", help="The registry's URL.", show_default=True, metavar="URL"
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document, nothing else.")]
LabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--label", "-l", help="KEY=VALUE; repeatable, all must match.", metavar="KEY=VALUE"
    ),
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait on the registry.")]


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
    """NAME, NAME:TAG or NAME@DIGEST. `reference`: True required, False refused."""
    from arca.errors import RegistryError
    from arca.formats.digest import Digest
    from arca.formats.reference import validate_name, validate_tag

    name, at, digest = value.partition("@")
    tag = None
    if not at and ":" in name.rsplit("/", 1)[-1]:
        name, _, tag = name.rpartition(":")
    try:
        validate_name(name)
        if tag is not None:
            validate_tag(tag)
        if at:
            Digest.parse(digest)
    except RegistryError as error:
        raise typer.BadParameter(error.message, param_hint=hint) from None
    found = digest if at else tag
    if reference and found is None:
        raise typer.BadParameter(f"{value!r} names no artifact: add :TAG or @DIGEST")
    if reference is False and found is not None:
        raise typer.BadParameter(f"{value!r}: give a repository name only")
    return name, found


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


@contextmanager
def _progress(enabled: bool, description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr, fed by the client's (done, total) callback."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_stderr, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _time(value: str) -> datetime:
    """ISO 8601; without an offset it is UTC, so a CI script means the same anywhere."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time", param_hint="--created"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _client(registry: str, timeout: float) -> ArcaClient:
    # Imported here: `arca serve` and `arca index` need none of the client.
    from arca.client.sync import ArcaClient

    return ArcaClient(registry, timeout=timeout)


# -- workflow commands -----------------------------------------------------------------


@app.command()
def push(
    target: Annotated[str, typer.Argument(help="NAME or NAME:TAG.", metavar="TARGET")],
    paths: Annotated[list[Path], typer.Argument(help="Files, or one directory.")],
    label: LabelOption = None,
    tag: Annotated[list[str] | None, typer.Option(help="Another tag (repeatable).")] = None,
    title: Annotated[str | None, typer.Option(help="Artifact name (default: NAME).")] = None,
    version: Annotated[str | None, typer.Option(help="Artifact version (default: TAG).")] = None,
    created: Annotated[
        str | None,
        typer.Option(
            help="Creation time, ISO 8601 (default: now; UTC unless an offset is given);"
            " it orders `ls` and `latest`."
        ),
    ] = None,
    metadata: Annotated[str | None, typer.Option(help="Free metadata, as JSON.")] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 300.0,
    as_json: Json = False,
) -> None:
    """Push files (or a directory's files) as one artifact, with labels."""
    name, tag_ = _target(target, reference=None)
    if tag_ is not None and ":" in tag_:
        raise typer.BadParameter("push to NAME or NAME:TAG; the digest is computed")
    labels = _labels(label)
    directory = len(paths) == 1 and paths[0].is_dir()
    if not directory and any(path.is_dir() for path in paths):
        raise typer.BadParameter("give files, or one directory alone", param_hint="PATHS")
    try:
        meta = None if metadata is None else json.loads(metadata)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--metadata") from None
    options: PushOptions = {
        "tag": tag_,
        "tags": tag or (),
        "labels": labels,
        "title": title,
        "version": version,
        "created": None if created is None else _time(created),
        "metadata": meta,
    }
    with (
        _errors(as_json),
        _client(registry, timeout) as client,
        _progress(not as_json, f"push {target}") as progress,
    ):
        options["progress"] = progress
        if directory:
            result = client.push_directory(name, paths[0], **options)
        else:
            result = client.push_files(name, paths, **options)
    files: list[dict[str, Any]] = [
        {"path": f.path, "size": f.size, "sha256": str(f.sha256), "blake3": str(f.blake3)}
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
    _stderr.print(
        f"pushed {len(files)} files ({decimal(size)}): {result.uploaded} uploaded,"
        f" {result.skipped} already there"
        + (f"; tags {', '.join(result.tags)}" if result.tags else ""),
        markup=False,
    )


@app.command()
def pull(
    target: Annotated[str, typer.Argument(help="NAME:TAG, NAME@DIGEST, or NAME with --label.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write to.")] = Path(),
    label: LabelOption = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 300.0,
    as_json: Json = False,
) -> None:
    """Download an artifact's files, each checked (sha256, blake3) as it arrives.

    Without a reference, the newest artifact carrying every --label."""
    name, reference = _target(target, reference=None)
    labels = _labels(label)
    with _errors(as_json), _client(registry, timeout) as client:
        if reference is None:
            reference = client.latest(name, labels).digest
        elif labels:
            raise typer.BadParameter("give a reference or --label, not both")
        with _progress(not as_json, f"pull {name}") as progress:
            result = client.pull(name, reference, output, progress=progress)
    files = [
        {"path": f.path, "written_to": str(p), "size": f.size, "sha256": str(f.sha256)}
        for f, p in zip(result.artifact.files, result.paths, strict=True)
    ]
    if as_json:
        _print_json({"name": name, "digest": result.digest, "files": files})
        return
    for file in files:
        typer.echo(file["written_to"])
    _stderr.print(f"pulled {name}@{result.digest}: {len(files)} files", markup=False)


@app.command("ls")
def list_artifacts(
    name: Annotated[str, typer.Argument(help="Repository name.")],
    label: LabelOption = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Most artifacts to show (with --all: per request).")
    ] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    cursor: Annotated[str | None, typer.Option(help="Start after this page cursor.")] = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """List a repository's artifacts, newest first, filtered by labels."""
    _target(name, reference=False, hint="NAME")
    labels = _labels(label)
    with _errors(as_json), _client(registry, timeout) as client:
        if all_pages:
            found = list(client.iter_artifacts(name, labels, page_size=min(limit, 1000)))
            next_cursor = None
        else:
            page = client.list(name, labels, limit=limit, cursor=cursor)
            found, next_cursor = page.artifacts, page.cursor
    if as_json:
        _print_json(
            {"name": name, "artifacts": [dict(a.raw) for a in found], "cursor": next_cursor}
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("CREATED", "DIGEST", "TAGS", "LABELS", "SIZE", "FILES"):
        table.add_column(column, no_wrap=column != "LABELS")
    for artifact in found:
        table.add_row(
            artifact.created.strftime("%Y-%m-%d %H:%M:%S"),
            artifact.digest.removeprefix("sha256:")[:12],
            ",".join(artifact.tags),
            " ".join(f"{k}={v}" for k, v in artifact.labels.items()),
            decimal(artifact.size),
            str(artifact.file_count),
        )
    # Not a terminal: wide enough that no column is cut (scripts should use --json).
    Console(width=None if sys.stdout.isatty() else 200).print(table, markup=False, highlight=False)
    if next_cursor:
        _stderr.print(f"more: --cursor {next_cursor}", markup=False)


@app.command()
def latest(
    name: Annotated[str, typer.Argument(help="Repository name.")],
    label: LabelOption = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """The newest artifact carrying every --label (exit 1 if there is none)."""
    _target(name, reference=False, hint="NAME")
    labels = _labels(label)
    with _errors(as_json), _client(registry, timeout) as client:
        found = client.latest(name, labels)
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
    target: Annotated[str, typer.Argument(help="NAME:TAG or NAME@DIGEST.")],
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 60.0,
    as_json: Json = False,
) -> None:
    """One artifact's record: tags, digests, labels, files, size, created time."""
    name, reference = _target(target, reference=True)
    assert reference is not None
    with _errors(as_json), _client(registry, timeout) as client:
        record = client.get(name, reference)
    if as_json:
        _print_json(dict(record.raw))
        return
    typer.echo(f"{name}@{record.digest}")
    typer.echo(f"  created  {record.created.isoformat()} ({record.created_source})")
    typer.echo(f"  tags     {', '.join(record.tags) or '-'}")
    typer.echo(f"  labels   {' '.join(f'{k}={v}' for k, v in record.labels.items()) or '-'}")
    typer.echo(f"  size     {decimal(record.size)} in {len(record.files)} files")
    for file in record.files:
        typer.echo(f"    {file.path}  {decimal(file.size)}  {file.sha256}")


@app.command()
def verify(
    target: Annotated[str, typer.Argument(help="NAME:TAG, NAME@DIGEST, or NAME (+ --label).")],
    label: LabelOption = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 600.0,
    as_json: Json = False,
) -> None:
    """Have the registry re-hash an artifact's blobs (sha256 and blake3); exit 1 on any mismatch.

    Without a reference: every artifact of NAME carrying all --label."""
    name, reference = _target(target, reference=None)
    labels = _labels(label)
    if reference is not None and labels:
        raise typer.BadParameter("give a reference or --label, not both")
    with _errors(as_json), _client(registry, timeout) as client:
        if reference is not None:
            digests = [reference]
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
                typer.echo(f"ok      {name}@{result.digest} ({len(result.checks)} blobs)")
                continue
            typer.echo(f"FAILED  {name}@{result.digest}")
            for line in result.failures:
                typer.echo(f"  {line}")
        if not ok:
            failed = sum(not result.ok for result in results)
            _stderr.print(f"verification failed: {failed} of {len(results)} artifacts")
    raise typer.Exit(EXIT_OK if ok else EXIT_NEGATIVE)


@app.command("rm")
def remove(
    target: Annotated[str, typer.Argument(help="NAME:TAG or NAME@DIGEST, or NAME with --label.")],
    label: LabelOption = None,
    registry: RegistryUrl = DEFAULT_REGISTRY,
    timeout: Timeout = 300.0,
    as_json: Json = False,
) -> None:
    """Delete one artifact (and every tag on it), or every artifact carrying all --label."""
    name, reference = _target(target, reference=None)
    labels = _labels(label)
    if (reference is None) == (not labels):
        raise typer.BadParameter("give NAME:TAG or NAME@DIGEST, or NAME with --label")
    with _errors(as_json), _client(registry, timeout) as client:
        if reference is not None:
            deleted = [client.delete(name, reference)]
        else:
            deleted = client.delete_by_label(name, labels)
    if as_json:
        _print_json({"name": name, "deleted": deleted})
        return
    for digest in deleted:
        typer.echo(f"{name}@{digest}")
    _stderr.print(f"deleted {len(deleted)} artifacts", markup=False)


def main() -> None:
    app()
