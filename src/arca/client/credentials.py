"""Registry credentials the way the ecosystem keeps them: `~/.docker/config.json` `auths`.

`arca login` writes the same entry `docker login`, `podman login --authfile`,
`oras login` and `skopeo login --authfile` read and write, so one login serves them
all: `{"auths": {"<host:port>": {"auth": base64("user:password")}}}`. The file is
`$DOCKER_CONFIG/config.json` when `DOCKER_CONFIG` is set, else `~/.docker/config.json`;
other keys in it are kept as they are. Credential helpers (`credsStore`,
`credHelpers`) are not consulted: a registry stored only there is not found.

`arca.client` sends the stored user and password as Basic credentials, which arca
accepts on every route; anonymous requests go without.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx


def config_path() -> Path:
    directory = os.environ.get("DOCKER_CONFIG")
    base = Path(directory) if directory else Path.home() / ".docker"
    return base / "config.json"


def registry_key(registry: str) -> str:
    """`host:port` of a registry URL (or of a bare `host:port`), as the auths keys are."""
    parts = urlsplit(registry if "://" in registry else f"//{registry}")
    return parts.netloc or registry


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable JSON file: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return document


def load(registry: str, path: Path | None = None) -> tuple[str, str] | None:
    """The user and password stored for `registry`, or None."""
    auths = _read(path or config_path()).get("auths") or {}
    key = registry_key(registry)
    for candidate, entry in auths.items():
        if registry_key(candidate) != key or not isinstance(entry, dict):
            continue
        encoded = entry.get("auth")
        if not isinstance(encoded, str):
            continue
        try:
            user, separator, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if separator:
            return user, password
    return None


def _write(path: Path, document: dict[str, Any]) -> None:
    """Atomically, mode 0600: the file holds passwords."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            json.dump(document, output, indent="\t")
            output.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def store(registry: str, user: str, password: str, path: Path | None = None) -> Path:
    path = path or config_path()
    document = _read(path)
    auths = document.setdefault("auths", {})
    key = registry_key(registry)
    for candidate in [c for c in auths if registry_key(c) == key]:
        del auths[candidate]
    auths[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _write(path, document)
    return path


def remove(registry: str, path: Path | None = None) -> bool:
    path = path or config_path()
    document = _read(path)
    auths = document.get("auths") or {}
    key = registry_key(registry)
    found = [c for c in auths if registry_key(c) == key]
    for candidate in found:
        del auths[candidate]
    if found:
        _write(path, document)
    return bool(found)


def auth_for(registry: str) -> httpx.Auth | None:
    """Basic credentials for `registry` from the config file, if any are stored."""
    try:
        found = load(registry)
    except ValueError:
        return None
    return httpx.BasicAuth(*found) if found else None
