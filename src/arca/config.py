"""Settings: a TOML file, then `ARCA_<SECTION>_<KEY>` environment overrides.

Nothing reads the environment at import time; `load_settings` is called once by the
CLI. Unknown sections or keys are errors, so a typo never silently falls back to a
default. Every option is documented in docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1 << 20


class ConfigError(ValueError):
    """A configuration file or override that arca cannot use."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    log_level: str = "info"
    # Base URL clients reach us at, for absolute Location headers; relative if empty.
    public_url: str = ""
    # Refuse every write (push, delete) with a clear error: maintenance, a mirror's copy.
    read_only: bool = False
    # PEM files: serve HTTPS directly (docs/deployment.md shows the reverse-proxy way).
    tls_cert: str = ""
    tls_key: str = ""


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


@dataclass(frozen=True)
class TrashSettings:
    # Swept objects stay restorable this long, then a collector run purges them.
    retention_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    gc: GcSettings = field(default_factory=GcSettings)
    trash: TrashSettings = field(default_factory=TrashSettings)


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "storage": StorageSettings,
    "limits": LimitSettings,
    "auth": AuthSettings,
    "gc": GcSettings,
    "trash": TrashSettings,
}
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
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    sections = {name: _section(cls, name, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    settings = Settings(**sections)
    if settings.storage.driver not in _DRIVER_SECTIONS:
        raise ConfigError(
            f"storage.driver must be one of {', '.join(_DRIVER_SECTIONS)},"
            f" not {settings.storage.driver!r}"
        )
    _check_auth(settings)
    if settings.gc.untagged not in ("keep", "delete"):
        raise ConfigError(f'gc.untagged must be "keep" or "delete", not {settings.gc.untagged!r}')
    for key in ("interval_seconds", "grace_seconds", "lease_seconds"):
        if getattr(settings.gc, key) < 0:
            raise ConfigError(f"gc.{key} must be >= 0")
    if settings.gc.lease_seconds < 1:
        raise ConfigError("gc.lease_seconds must be >= 1")
    if settings.trash.retention_seconds < 0:
        raise ConfigError("trash.retention_seconds must be >= 0")
    return settings


def _check_auth(settings: Settings) -> None:
    from arca.auth.settings import AuthConfigError, check  # pure, imports no service

    try:
        check(settings)
    except AuthConfigError as exc:
        raise ConfigError(str(exc)) from exc


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
        elif type(default) is int and (type(value) is not int):
            raise ConfigError(f"{name}.{key} must be an integer, not {value!r}")
        elif type(default) is str and not isinstance(value, str):
            raise ConfigError(f"{name}.{key} must be a string, not {value!r}")
        elif type(default) is bool and type(value) is not bool:
            raise ConfigError(f"{name}.{key} must be true or false, not {value!r}")
        elif type(default) is tuple:
            if not isinstance(value, list):
                raise ConfigError(f"{name}.{key} must be an array, not {value!r}")
            checked[key] = tuple(value)
        else:
            checked[key] = value
    return cls(**checked)
