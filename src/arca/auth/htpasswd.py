"""Users in an htpasswd file (bcrypt only), re-read when the file changes.

The file is the one Apache's `htpasswd -B` and distribution's `htpasswd` auth use:
one `user:hash` per line, `#` comments. Only bcrypt hashes (`$2y$`, `$2b$`, `$2a$`)
are accepted; a line with another scheme (MD5, SHA1, crypt, plain) is skipped with a
warning, since those are cheap to brute-force.

Checking a password costs one bcrypt (tens of milliseconds, on purpose), so callers
cache successes (`arca.auth.identities`); an unknown user costs the same bcrypt
against a dummy hash, so timing does not tell whether a user exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import bcrypt

log = logging.getLogger(__name__)

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
"""Names a user may have: no `:` (the file's separator) and no `$` (robots' prefix)."""
BCRYPT_ROUNDS = 10
_BCRYPT_PREFIXES = (b"$2y$", b"$2b$", b"$2a$")
# Verified against when the user is unknown, so both paths cost one bcrypt.
_DUMMY_HASH = bcrypt.hashpw(b"arca-no-such-user", bcrypt.gensalt(BCRYPT_ROUNDS))


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """A `$2y$` bcrypt hash, the prefix Apache's htpasswd writes."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds))
    return "$2y$" + hashed.decode()[4:]


def check_password(password: str, hashed: bytes | None) -> bool:
    """bcrypt's own comparison is constant-time; None checks against a dummy hash."""
    target = _DUMMY_HASH if hashed is None else hashed
    # bcrypt wants $2b$; $2y$ and $2a$ name the same algorithm for our purposes.
    normalised = b"$2b$" + target[4:]
    try:
        ok = bcrypt.checkpw(password.encode(), normalised)
    except ValueError:
        return False
    return ok and hashed is not None


def parse(text: str, source: str = "htpasswd") -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, hashed = line.partition(":")
        if not separator or not USER_NAME.fullmatch(name):
            log.warning(
                "htpasswd line skipped: not user:hash", extra={"file": source, "line": number}
            )
            continue
        encoded = hashed.strip().encode()
        if not encoded.startswith(_BCRYPT_PREFIXES):
            log.warning(
                "htpasswd line skipped: not a bcrypt hash",
                extra={"file": source, "line": number, "user": name},
            )
            continue
        users[name] = encoded
    return users


class HtpasswdFile:
    """The users of one file; `check` re-reads it when its size or mtime changed.

    A missing file means no users (so `arca user add` can create it later). The file
    is stat'ed at most every `recheck_seconds`, not on every request.
    """

    def __init__(self, path: str | Path, recheck_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self._recheck = recheck_seconds
        self._users: dict[str, bytes] = {}
        self._signature: tuple[int, int, int] | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()
        self.generation = 0
        """Bumped on every reload, so caches of checked passwords know to drop."""
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._recheck:
            return
        with self._lock:
            self._checked = now
            try:
                stat = self.path.stat()
                signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except FileNotFoundError:
                signature = None
            if signature == self._signature and not force:
                return
            try:
                text = self.path.read_text(encoding="utf-8") if signature else ""
            except OSError as exc:
                log.error(
                    "htpasswd file unreadable", extra={"file": str(self.path), "error": str(exc)}
                )
                return
            self._users = parse(text, str(self.path))
            self._signature = signature
            self.generation += 1

    def names(self) -> list[str]:
        self.refresh()
        return sorted(self._users)

    def exists(self, name: str) -> bool:
        self.refresh()
        return name in self._users

    def check(self, name: str, password: str) -> bool:
        self.refresh()
        hashed = self._users.get(name)
        return check_password(password, hashed)


# -- editing the file (`arca user add|remove`) ------------------------------------------


def _rewrite(path: Path, lines: list[str]) -> None:
    """Atomically replace the file (readers never see half of it), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            output.write("".join(f"{line}\n" for line in lines))
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def set_user(path: str | Path, name: str, password: str, rounds: int = BCRYPT_ROUNDS) -> bool:
    """Add `name` or change its password; True when the user is new."""
    if not USER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid user name ({USER_NAME.pattern})")
    path = Path(path)
    entry = f"{name}:{hash_password(password, rounds)}"
    lines = _lines(path)
    kept = [line for line in lines if line.partition(":")[0].strip() != name]
    _rewrite(path, [*kept, entry])
    return len(kept) == len(lines)


def remove_user(path: str | Path, name: str) -> bool:
    """Remove `name`; False when it was not there."""
    path = Path(path)
    lines = _lines(path)
    kept = [line for line in lines if line.partition(":")[0].strip() != name]
    if len(kept) == len(lines):
        return False
    _rewrite(path, kept)
    return True
