"""Writing an artifact's files under a local directory: checked first, staged, then placed.

The paths come from the registry, which may be hostile or simply odd (a manifest
crafted by hand, a mirror of another tool's push). So a pull first checks every path
against the target directory and against each other, before a byte is written:

- no path may resolve outside the directory (`..`, absolute, or through a symlink
  that already exists there);
- no path may lie below another file or link (`x` and `x/y`), and no component may be
  longer than `NAME_MAX` bytes, since no file system could write those;
- an existing directory or special file is never replaced by a file or link.

Then each file streams into a temporary file of its own next to its target
(`mkstemp`: a fresh short name no artifact path can collide with), each link is made
under such a name too, and only when every file has arrived and checked out are they
renamed into place (empty directories are made just before). A failure removes the
temporary files and the directories the pull created, so the target is left as it was.
`push` refuses the same names (`check_names`), so arca never stores what it cannot pull.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from arca.client.errors import LocalFileError, UnsafeArtifact

NAME_MAX = 255
"""Bytes in one path component on the file systems arca runs on (ext4, xfs, APFS)."""


def check_names(leaves: Iterable[str], directories: Iterable[str] = ()) -> None:
    """Refuse paths no file system can hold together: a component over NAME_MAX bytes
    (UTF-8), or a path below a file or link (`leaves`), such as `x` and `x/y`."""
    taken = set(leaves)
    for path in sorted({*taken, *directories}):
        parts = path.split("/")
        for part in parts:
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise UnsafeArtifact(
                    f"{path[:80]!r}: a path component is longer than {NAME_MAX} bytes"
                )
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in taken:
                raise UnsafeArtifact(f"{path!r} lies below {parent!r}, which is a file or link")


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

    def directory(self, path: str) -> Path:
        """Where directory `path` goes; an existing one is kept, anything else refused."""
        target = self._place(path)
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise UnsafeArtifact(f"refusing to create directory {path!r}: {target} is not one")
        return target

    def target(self, path: str) -> Path:
        """Where file or link `path` goes; an existing file or link there is replaced."""
        target = self._place(path)
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

    def _place(self, path: str) -> Path:
        """`root/path`, checked to stay inside `root`."""
        base = self.root.resolve()
        parts = path.split("/")
        if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise UnsafeArtifact(f"refusing to write {path!r}: not a relative path")
        # The parent is resolved (an existing symlink there is followed and must stay
        # inside); the last component is not: a symlink there is replaced, not followed.
        parent = base.joinpath(*parts[:-1]).resolve()
        if not parent.is_relative_to(base):
            raise UnsafeArtifact(f"refusing to write {path!r} outside {self.root}")
        return parent / parts[-1]

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
    def temporary(self, target: Path, *, executable: bool = False) -> Iterator[BinaryIO]:
        """A fresh file beside `target`, to stream into; placed at `commit`. Its mode is
        what a new file gets (0666, or 0777 when executable, less the umask)."""
        self.make_directory(target.parent)
        with _local(target):
            fd, name = tempfile.mkstemp(prefix=".arca-", suffix=".partial", dir=target.parent)
        self._staged.append(_Staged(target, Path(name)))
        with _local(target), os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), (0o777 if executable else 0o666) & ~_umask())
            yield out

    def link(self, target: Path, link_target: str) -> None:
        """A symlink to `link_target` at a fresh name beside `target`; placed at `commit`."""
        self.make_directory(target.parent)
        while True:
            temporary = target.parent / f".arca-{secrets.token_hex(8)}.partial"
            with _local(target):
                try:
                    os.symlink(link_target, temporary)
                except FileExistsError:
                    continue
            break
        self._staged.append(_Staged(target, temporary))

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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _local(path: Path) -> Iterator[None]:
    """An OSError from the local file system as the client's error, naming the path."""
    try:
        yield
    except OSError as error:
        raise LocalFileError(f"{path}: {error.strerror or error}") from error
