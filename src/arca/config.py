"""Settings: a TOML file, then `ARCA_<SECTION>_<KEY>` environment overrides.

Nothing reads the environment at import time; `load_settings` is called once by the
CLI. Unknown sections or keys are errors, so a typo never silently falls back to a
default. Every option is documented in docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arca.storage.options import DriverOptions

MiB = 1 << 20


class ConfigError(ValueError):
    """A configuration file or override that arca cannot use."""


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    log_level: str = "info"
    # "text" for a terminal, "json" (one object per line) for a log collector.
    log_format: str = "text"
    # One line per request (logger arca.access), at info level.
    access_log: bool = True
    # Base URL clients reach us at, for absolute Location headers; relative if empty.
    public_url: str = ""
    # Refuse every write (push, delete) with a clear error: maintenance, a mirror's copy.
    read_only: bool = False
    # PEM files: serve HTTPS directly (docs/deployment.md shows the reverse-proxy way).
    tls_cert: str = ""
    tls_key: str = ""
    # Blob GETs from filesystem storage sent by sendfile, never through Python (plain
    # HTTP only; docs/benchmarks.md). false: streamed like every other driver's.
    sendfile: bool = True

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("server.host must name an address to listen on")
        # uvicorn would bind port % 65536: refuse what the kernel would not take.
        _in_range("server", self, "port", 1, 65535)
        _in_range("server", self, "workers", 1, 1024)
        _one_of("server", self, "log_level", LOG_LEVELS)
        _one_of("server", self, "log_format", LOG_FORMATS)
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"server.public_url must be an http:// or https:// URL, not {self.public_url!r}"
            )


@dataclass(frozen=True)
class StorageSettings:
    driver: str = "filesystem"
    filesystem: Mapping[str, Any] = field(default_factory=lambda: {"root": "./data"})
    s3: Mapping[str, Any] = field(default_factory=dict)
    gcs: Mapping[str, Any] = field(default_factory=dict)
    azure: Mapping[str, Any] = field(default_factory=dict)
    memory: Mapping[str, Any] = field(default_factory=dict)

    def driver_options(self) -> dict[str, Any]:
        return dict(getattr(self, self.driver))


@dataclass(frozen=True)
class LimitSettings:
    manifest_max_bytes: int = 4 * MiB
    referrers_page_size: int = 500
    tags_page_size: int = 10_000
    catalog_page_size: int = 10_000
    # Upload sessions untouched for this long are deleted; checked this often (0: never).
    upload_expiry_seconds: int = 24 * 3600
    upload_purge_interval_seconds: int = 3600
    # Abuse limits (docs/configuration.md, "Abuse limits"); 0 turns one off.
    blob_max_bytes: int = 10 * 1024 * MiB
    upload_sessions_per_repository: int = 1000
    header_timeout_seconds: int = 20
    body_timeout_seconds: int = 60
    body_min_bytes_per_second: int = 1024

    def __post_init__(self) -> None:
        for key in ("manifest_max_bytes", "referrers_page_size", "tags_page_size"):
            _in_range("limits", self, key, 1)
        _in_range("limits", self, "catalog_page_size", 1)
        _in_range("limits", self, "upload_expiry_seconds", 1)
        _in_range("limits", self, "upload_purge_interval_seconds", 0)


_WEBHOOK_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class WebhookSettings:
    """One `[[events.webhooks]]` table (docs/events.md, "Webhooks")."""

    url: str
    name: str = ""
    """Names its cursor and dead letters in storage; default: derived from the URL."""
    secret: str = ""
    types: tuple[str, ...] = ()
    """Event types to send (`manifest.pushed`…); empty: all."""
    repositories: tuple[str, ...] = ()
    """Repository globs to send; empty: all."""
    timeout_seconds: float = 10.0
    max_attempts: int = 10
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    allow_link_local: bool = False
    """Allow targets that resolve to link-local or cloud metadata addresses (SSRF)."""


@dataclass(frozen=True)
class EventSettings:
    enabled: bool = True
    """Record every change in the event log (docs/events.md); off only for benchmarks."""
    source: str = "/arca"
    """CloudEvents `source` of every event this registry records."""
    pull_sample_rate: float = 0.0
    """Fraction of manifest GETs recorded as `manifest.pulled` (0: none, 1: all)."""
    retention_seconds: int = 0
    """Events older than this are deleted (0: kept forever)."""
    compact_after_seconds: int = 86400
    """Events older than this are compacted into daily segment objects (0: never)."""
    maintenance_interval_seconds: int = 600
    """How often one replica runs retention and compaction (0: never)."""
    stream_poll_seconds: float = 0.5
    """How often a stream or a webhook looks for events appended by other replicas."""
    lease_seconds: float = 30.0
    """Term of the lease a replica holds to deliver a webhook: after a crash, how long
    the others wait before taking over."""
    webhooks: tuple[WebhookSettings, ...] = ()

    def __post_init__(self) -> None:
        _in_range("events", self, "pull_sample_rate", 0, 1)
        for key in ("retention_seconds", "compact_after_seconds", "maintenance_interval_seconds"):
            _in_range("events", self, key, 0)
        for key in ("stream_poll_seconds", "lease_seconds"):
            _positive("events", self, key)


@dataclass(frozen=True)
class AuthSettings:
    """`[auth]`, off by default (docs/auth.md); `policies` are checked by arca.auth.policy."""

    enabled: bool = False
    htpasswd: str = ""
    service: str = "arca"
    realm: str = ""
    issuer: str = "arca"
    token_ttl_seconds: int = 300
    refresh_ttl_seconds: int = 30 * 24 * 3600
    signing_keys: str = ""
    groups: Mapping[str, Any] = field(default_factory=dict)
    admins: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    policies: tuple[Mapping[str, Any], ...] = ()
    failed_login_limit: int = 10
    failed_login_window_seconds: int = 60
    revocation_check_seconds: int = 5
    oidc: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GcSettings:
    # Seconds between collector runs in the server (0: never; `arca gc` still works).
    interval_seconds: int = 0
    # Nothing written or re-used within this many seconds is collected (docs/gc.md).
    grace_seconds: int = 3600
    # Manifests no tag reaches: "keep" them, or "delete" them (and what only they use).
    untagged: str = "keep"
    # How long a collector's lease lasts without renewal (one collector at a time).
    lease_seconds: int = 60

    def __post_init__(self) -> None:
        _in_range("gc", self, "interval_seconds", 0)
        _in_range("gc", self, "grace_seconds", 0)
        _in_range("gc", self, "lease_seconds", 1)
        _one_of("gc", self, "untagged", ("keep", "delete"))


@dataclass(frozen=True)
class TrashSettings:
    # Swept objects stay restorable this long, then a collector run purges them.
    retention_seconds: int = 7 * 24 * 3600

    def __post_init__(self) -> None:
        _in_range("trash", self, "retention_seconds", 0)


@dataclass(frozen=True)
class ImmutabilityRule:
    """One `[[immutability]]` table (docs/protection.md): tags that never move."""

    repositories: tuple[str, ...]
    """Repository globs (`*` within a component, `**` across)."""
    tags: tuple[str, ...]
    """Regular expressions, searched in the tag (anchor them: `^v[0-9]`)."""
    name: str = ""
    """Named in refusals; default `immutability[<position>]`."""


@dataclass(frozen=True)
class QuotaRule:
    """One `[[quotas]]` table (docs/protection.md): limits of each matching repository."""

    repositories: tuple[str, ...]
    max_bytes: int = 0
    """Bytes of distinct blobs and manifests in one repository (0: no limit)."""
    max_artifacts: int = 0
    """Manifests without a subject in one repository (0: no limit)."""
    name: str = ""
    """Named in refusals; default `quotas[<position>]`."""


@dataclass(frozen=True)
class ProtectionSettings:
    # How long a replica trusts a repository's counted usage before counting again.
    usage_cache_seconds: float = 10.0

    def __post_init__(self) -> None:
        _in_range("protection", self, "usage_cache_seconds", 0, 3600)


@dataclass(frozen=True)
class RetentionSettings:
    """`[retention]` and its `[[retention.policies]]` (docs/lifecycle.md)."""

    # Seconds between retention runs (plan, then apply) in the server (0: never).
    interval_seconds: int = 0
    # A plan deleting more than this fraction of a repository's artifacts is refused
    # unless forced (`arca retention apply --force`); the server never forces.
    max_delete_fraction: float = 0.5
    # How long an applier's lease lasts without renewal (one applier at a time).
    lease_seconds: int = 60
    policies: tuple[Any, ...] = ()
    """`arca.lifecycle.policies.RetentionPolicy`, checked at load."""

    def __post_init__(self) -> None:
        _in_range("retention", self, "interval_seconds", 0)
        _in_range("retention", self, "max_delete_fraction", 0, 1)
        _in_range("retention", self, "lease_seconds", 1)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    gc: GcSettings = field(default_factory=GcSettings)
    trash: TrashSettings = field(default_factory=TrashSettings)
    events: EventSettings = field(default_factory=EventSettings)
    protection: ProtectionSettings = field(default_factory=ProtectionSettings)
    immutability: tuple[ImmutabilityRule, ...] = ()
    quotas: tuple[QuotaRule, ...] = ()
    retention: RetentionSettings = field(default_factory=RetentionSettings)


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "storage": StorageSettings,
    "limits": LimitSettings,
    "auth": AuthSettings,
    "gc": GcSettings,
    "trash": TrashSettings,
    "events": EventSettings,
    "protection": ProtectionSettings,
    "retention": RetentionSettings,
}
# Top-level arrays of tables (`[[immutability]]`), each parsed by its own function.
_RULE_ARRAYS = ("immutability", "quotas")
# ARCA_REGISTRY is the client's (the CLI's registry URL), so a shell may set it too.
_NOT_SETTINGS = frozenset({"ARCA_CONFIG", "ARCA_REGISTRY"})
_DRIVER_SECTIONS = ("filesystem", "s3", "gcs", "azure", "memory")


def load_settings(
    environ: Mapping[str, str] | None = None, path: str | Path | None = None
) -> Settings:
    """Settings from an optional TOML file and `ARCA_*` variables in `environ`."""
    environ = environ or {}
    path = path or environ.get("ARCA_CONFIG") or None
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    _apply_environment(raw, environ)
    return _build(raw)


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for key, value in environ.items():
        if not key.startswith("ARCA_") or key in _NOT_SETTINGS:
            continue
        parts = key[len("ARCA_") :].lower().split("_", 1)
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            raise ConfigError(f"unknown environment override {key}")
        section, option = parts
        target = raw.setdefault(section, {})
        if section == "storage":
            driver, _, sub = option.partition("_")
            if driver in _DRIVER_SECTIONS and sub:
                target = target.setdefault(driver, {})
                option = sub
        target[option] = _coerce_env(value)


def _coerce_env(value: str) -> Any:
    """Environment values are strings; TOML's own syntax gives them types."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _build(raw: Mapping[str, Any]) -> Settings:
    unknown = set(raw) - set(_SECTIONS) - set(_RULE_ARRAYS)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    raw = dict(raw)
    immutability = _immutability(raw.pop("immutability", []))
    quotas = _quotas(raw.pop("quotas", []))
    events = raw.get("events")
    if isinstance(events, Mapping) and "webhooks" in events:
        events = dict(events)
        events["webhooks"] = _webhooks(events["webhooks"])
        raw["events"] = events
    retention = raw.get("retention")
    if isinstance(retention, Mapping) and "policies" in retention:
        from arca.lifecycle.policies import parse_policies  # imports only this module

        raw["retention"] = {**retention, "policies": parse_policies(retention["policies"])}
    sections = {name: _section(cls, name, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    settings = Settings(**sections, immutability=immutability, quotas=quotas)
    if settings.storage.driver not in _DRIVER_SECTIONS:
        raise ConfigError(
            f"storage.driver must be one of {', '.join(_DRIVER_SECTIONS)},"
            f" not {settings.storage.driver!r}"
        )
    _check_auth(settings)
    storage_options(settings)  # the driver's own checks, without touching the backend
    return settings


def _check_auth(settings: Settings) -> None:
    from arca.auth.settings import AuthConfigError, check  # pure, imports no service

    try:
        check(settings)
    except AuthConfigError as exc:
        raise ConfigError(str(exc)) from exc


def storage_options(settings: Settings) -> DriverOptions:
    """The chosen driver's `[storage.<driver>]` table, parsed into its typed options."""
    from arca.storage.drivers import driver_options

    try:
        return driver_options(settings.storage.driver, settings.storage.driver_options())
    except ValueError as error:  # OptionError, DriverUnavailable: one line naming the key
        raise ConfigError(str(error)) from None


_INFINITE = (float("inf"), float("-inf"))


def _in_range(
    section: str, values: object, key: str, minimum: float, maximum: float | None = None
) -> None:
    value = getattr(values, key)
    # Written so that NaN fails too (TOML has `nan`; every comparison with it is false).
    if not (value >= minimum and (maximum is None or value <= maximum)) or value in _INFINITE:
        bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
        raise ConfigError(f"{section}.{key} must be {bounds}, not {value!r}")


def _positive(section: str, values: object, key: str) -> None:
    value = getattr(values, key)
    if not value > 0 or value in _INFINITE:
        raise ConfigError(f"{section}.{key} must be more than 0, not {value!r}")


def _one_of(section: str, values: object, key: str, allowed: tuple[str, ...]) -> None:
    value = getattr(values, key)
    if value not in allowed:
        raise ConfigError(f"{section}.{key} must be one of {', '.join(allowed)}, not {value!r}")


def _section(cls: type[Any], name: str, values: Any) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    defaults = cls()
    checked: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{name}.{key}] must be a table")
            checked[key] = {**default, **value}
        elif type(default) is bool and type(value) is not bool:
            raise ConfigError(f"{name}.{key} must be true or false, not {value!r}")
        elif type(default) is int and (type(value) is not int):
            raise ConfigError(f"{name}.{key} must be an integer, not {value!r}")
        elif type(default) is float and type(value) not in (int, float):
            raise ConfigError(f"{name}.{key} must be a number, not {value!r}")
        elif type(default) is str and not isinstance(value, str):
            raise ConfigError(f"{name}.{key} must be a string, not {value!r}")
        elif type(default) is tuple:
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{name}.{key} must be an array, not {value!r}")
            checked[key] = tuple(value)
        else:
            checked[key] = value
    return cls(**checked)


def _webhooks(values: Any) -> tuple[WebhookSettings, ...]:
    """`[[events.webhooks]]`: each table checked like a section; names unique."""
    if not isinstance(values, list):
        raise ConfigError("[[events.webhooks]] must be an array of tables")
    hooks = []
    for position, table in enumerate(values):
        if isinstance(table, WebhookSettings):
            hooks.append(table)
            continue
        if not isinstance(table, Mapping) or not isinstance(table.get("url"), str):
            raise ConfigError(f"events.webhooks[{position}] needs a url")
        table = dict(table)
        for key in ("types", "repositories"):
            if key in table:
                if not isinstance(table[key], list) or not all(
                    isinstance(item, str) for item in table[key]
                ):
                    raise ConfigError(f"events.webhooks[{position}].{key} must be strings")
                table[key] = tuple(table[key])
        url = table["url"]
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise ConfigError(f"events.webhooks[{position}].url must be http(s)://…, not {url!r}")
        hook = _section(_WebhookDefaults, f"events.webhooks[{position}]", table)
        _check_webhook_target(position, hook)
        name = hook.name or hashlib.sha256(url.encode()).hexdigest()[:16]
        if not _WEBHOOK_NAME.fullmatch(name):
            raise ConfigError(
                f"events.webhooks[{position}].name {name!r}: lowercase letters, digits,"
                " '.', '_' or '-', at most 64"
            )
        if hook.max_attempts < 1 or hook.timeout_seconds <= 0 or hook.backoff_seconds <= 0:
            raise ConfigError(
                f"events.webhooks[{position}]: max_attempts, timeout_seconds and"
                " backoff_seconds must be positive"
            )
        hooks.append(dataclasses.replace(hook, name=name))
    names = [hook.name for hook in hooks]
    if len(set(names)) != len(names):
        raise ConfigError("events.webhooks: two webhooks have the same name")
    return tuple(hooks)


def _rule_tables(values: Any, array: str) -> list[dict[str, Any]]:
    """The tables of `[[array]]`, each with `repositories` a non-empty array of valid globs."""
    from arca.auth.policy import glob_regex

    if not isinstance(values, list) or not all(isinstance(t, Mapping) for t in values):
        raise ConfigError(f"[[{array}]] must be an array of tables")
    tables = []
    for position, table in enumerate(values):
        table = dict(table)
        where = f"{array}[{position}]"
        globs = table.get("repositories")
        if (
            not isinstance(globs, list)
            or not globs
            or not all(isinstance(g, str) and g for g in globs)
        ):
            raise ConfigError(f"{where}.repositories must be a non-empty array of globs")
        for glob in globs:
            if glob.startswith("/") or "//" in glob:
                raise ConfigError(f"{where}.repositories: {glob!r} cannot match a repository name")
            glob_regex(glob)
        table["repositories"] = tuple(globs)
        if not isinstance(table.setdefault("name", where), str) or not table["name"]:
            raise ConfigError(f"{where}.name must be a non-empty string")
        tables.append(table)
    names = [table["name"] for table in tables]
    if len(set(names)) != len(names):
        raise ConfigError(f"[[{array}]]: two rules have the same name")
    return tables


def _immutability(values: Any) -> tuple[ImmutabilityRule, ...]:
    rules = []
    for position, table in enumerate(_rule_tables(values, "immutability")):
        where = f"immutability[{position}]"
        tags = table.get("tags")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{where}.tags must be a non-empty array of regular expressions")
        for pattern in tags:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"{where}.tags: {pattern!r} is not a regular expression: {exc}"
                ) from None
        table["tags"] = tuple(tags)
        rules.append(_section(_ImmutabilityDefaults, where, table))
    return tuple(ImmutabilityRule(r.repositories, r.tags, r.name) for r in rules)


def _quotas(values: Any) -> tuple[QuotaRule, ...]:
    rules = []
    for position, table in enumerate(_rule_tables(values, "quotas")):
        where = f"quotas[{position}]"
        rule = _section(_QuotaDefaults, where, table)
        for key in ("max_bytes", "max_artifacts"):
            _in_range(where, rule, key, 0)
        if not rule.max_bytes and not rule.max_artifacts:
            raise ConfigError(f"{where} sets neither max_bytes nor max_artifacts")
        rules.append(QuotaRule(rule.repositories, rule.max_bytes, rule.max_artifacts, rule.name))
    return tuple(rules)


@dataclass(frozen=True)
class _ImmutabilityDefaults(ImmutabilityRule):
    repositories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class _QuotaDefaults(QuotaRule):
    repositories: tuple[str, ...] = ()


def _check_webhook_target(position: int, hook: WebhookSettings) -> None:
    from urllib.parse import urlsplit

    from arca.events.ssrf import forbidden_address, literal_address
    from arca.registry.events import TYPE_NAMES

    unknown = [t for t in hook.types if t.removeprefix("dev.arca.") not in TYPE_NAMES]
    if unknown:
        raise ConfigError(
            f"events.webhooks[{position}].types: unknown type {unknown[0]!r};"
            f" known: {', '.join(sorted(TYPE_NAMES))}"
        )
    address = literal_address(urlsplit(hook.url).hostname or "")
    if address is not None and forbidden_address(address) and not hook.allow_link_local:
        raise ConfigError(
            f"events.webhooks[{position}].url points at a link-local or metadata address"
            f" ({address}); set allow_link_local = true if you mean it"
        )


@dataclass(frozen=True)
class _WebhookDefaults(WebhookSettings):
    """WebhookSettings with a default url, so `_section` can read its defaults."""

    url: str = ""


_SECRET_WORDS = ("secret", "password", "token", "credential")


def describe(settings: Settings) -> str:
    """The effective settings as TOML, secrets masked: what `arca check-config` prints.

    Only the chosen driver's table is shown, with every option's value (defaults too)."""
    from arca.storage.options import masked

    lines: list[str] = []
    for section in dataclasses.fields(settings):
        values = getattr(settings, section.name)
        if isinstance(values, tuple):  # [[immutability]], [[quotas]]
            for rule in values:
                lines.append(f"\n[[{section.name}]]")
                lines.extend(
                    f"{item.name} = {_toml(item.name, getattr(rule, item.name))}"
                    for item in dataclasses.fields(rule)
                )
            continue
        lines.append(f"\n[{section.name}]")
        tables: dict[str, Mapping[str, Any]] = {}
        for item in dataclasses.fields(values):
            value = getattr(values, item.name)
            if isinstance(value, Mapping):
                tables[item.name] = value
            else:
                lines.append(f"{item.name} = {_toml(item.name, value)}")
        if isinstance(values, StorageSettings):
            tables = {values.driver: masked(storage_options(settings))}
        for name, table in tables.items():
            lines.append(f"\n[{section.name}.{name}]")
            lines.extend(f"{key} = {_toml(key, value)}" for key, value in table.items())
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml(key: str, value: Any) -> str:
    if isinstance(value, str) and value and any(w in key.lower() for w in _SECRET_WORDS):
        value = "***"
    if hasattr(value, "to_json"):  # a retention policy: an inline table
        value = value.to_json()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(key, v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(k, v)}" for k, v in value.items()) + "}"
        )
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string
