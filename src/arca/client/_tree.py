"""Writing an artifact's files under a local directory: checked first, staged, then placed.

The paths come from the registry, which may be hostile or simply odd (a manifest
crafted by hand, a mirror of another tool's push). So a pull first checks every path
against the target directory and against each other, before a byte is written:

- no path may resolve outside the directory (`..`, absolute, or through a symlink
  that already exists there);
- no path may lie below another file (`x` and `x/y`), and no component may be longer
  than `NAME_MAX` bytes, since no file system could write those;
- an existing directory or special file is never replaced by a file.

Then each file streams into a temporary file of its own next to its target
(`mkstemp`: a fresh short name no artifact path can collide with), and only when every
file has arrived and checked out are they renamed into place. A failure removes the
temporary files and the directories the pull created, so the target is left as it was.
`push` refuses the same names (`check_names`), so arca never stores what it cannot pull.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from arca.client.errors import LocalFileError, UnsafeArtifact

NAME_MAX = 255
"""Bytes in one path component on the file systems arca runs on (ext4, xfs, APFS)."""


def check_names(paths: Iterable[str]) -> None:
    """Refuse paths no file system can hold together: a component over NAME_MAX bytes
    (UTF-8), or a path below another file (`x` and `x/y`)."""
    files = set(paths)
    for path in sorted(files):
        parts = path.split("/")
        for part in parts:
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise UnsafeArtifact(
                    f"{path[:80]!r}: a path component is longer than {NAME_MAX} bytes"
                )
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in files:
                raise UnsafeArtifact(f"{path!r} lies below {parent!r}, which is a file")


@dataclass
class _Staged:
    target: Path
    temporary: Path


@dataclass
class Staging:
    """Temporary files beside their targets, placed all together by `commit`."""

    root: Path
    _staged: list[_Staged] = field(default_factory=list)
    _created: list[Path] = field(default_factory=list)

    def target(self, path: str) -> Path:
        """Where `path` goes: `root/path`, checked to stay inside `root`."""
        base = self.root.resolve()
        parts = path.split("/")
        if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise UnsafeArtifact(f"refusing to write {path!r}: not a relative path")
        # The parent is resolved (an existing symlink there is followed and must stay
        # inside); the last component is not: a symlink there is replaced, not followed.
        parent = base.joinpath(*parts[:-1]).resolve()
        if not parent.is_relative_to(base):
            raise UnsafeArtifact(f"refusing to write {path!r} outside {self.root}")
        target = parent / parts[-1]
        with _local(target):
            try:
                mode = target.lstat().st_mode
            except FileNotFoundError:
                return target
        if stat.S_ISDIR(mode):
            raise UnsafeArtifact(f"refusing to write {path!r}: {target} is a directory")
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise UnsafeArtifact(f"refusing to write {path!r}: {target} is a special file")
        return target

    def check_parents(self, target: Path) -> None:
        """Every existing ancestor of `target` below the root must be a directory."""
        base = self.root.resolve()
        for parent in reversed(target.parents):
            if parent == base or not parent.is_relative_to(base):
                continue
            with _local(parent):
                if parent.exists() and not parent.is_dir():
                    raise UnsafeArtifact(f"refusing to write {target}: {parent} is not a directory")

    def make_directory(self, directory: Path) -> None:
        """Create `directory` and its missing parents, remembering them for `abort`."""
        missing = [directory, *directory.parents]
        for parent in reversed(missing):
            if parent.is_dir():
                continue
            with _local(parent):
                parent.mkdir()
            self._created.append(parent)

    @contextlib.contextmanager
    def temporary(self, target: Path) -> Iterator[BinaryIO]:
        """A fresh file beside `target`, to stream into; placed at `commit`."""
        self.make_directory(target.parent)
        with _local(target):
            fd, name = tempfile.mkstemp(prefix=".arca-", suffix=".partial", dir=target.parent)
        staged = _Staged(target, Path(name))
        self._staged.append(staged)
        with _local(target), os.fdopen(fd, "wb") as out:
            yield out

    def commit(self) -> None:
        for staged in self._staged:
            with _local(staged.target):
                os.replace(staged.temporary, staged.target)
        self._staged.clear()
        self._created.clear()

    def abort(self) -> None:
        for staged in self._staged:
            with contextlib.suppress(OSError):
                staged.temporary.unlink()
        for directory in reversed(self._created):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._staged.clear()
        self._created.clear()


@contextlib.contextmanager
def staging(root: Path) -> Iterator[Staging]:
    """A Staging under `root` that is aborted (nothing left behind) if the block fails."""
    stage = Staging(root)
    try:
        yield stage
    except BaseException:
        stage.abort()
        raise


@contextlib.contextmanager
def _local(path: Path) -> Iterator[None]:
    """An OSError from the local file system as the client's error, naming the path."""
    try:
        yield
    except OSError as error:
        raise LocalFileError(f"{path}: {error.strerror or error}") from error
