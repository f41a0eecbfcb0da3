"""Local content for a push: files, a directory, or bytes in memory; hashed and read in chunks.

A file is read twice, never held whole: once to learn its sha256 and blake3 (both go
in the artifact document, and the sha256 lets the registry say it already has the
blob), once to stream it up.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import posixpath
import re
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import blake3

from arca.client._tree import check_names
from arca.client.errors import UnsafeArtifact, UsageError
from arca.formats.artifact import ArtifactFile, ArtifactLink
from arca.formats.digest import Digest

CHUNK_SIZE = 1 << 20
DEFAULT_MEDIA_TYPE = "application/octet-stream"
MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


@dataclass(frozen=True, slots=True)
class Source:
    """One file of an artifact to push: on disk (`local`) or in memory (`data`)."""

    path: str
    media_type: str
    local: Path | None = None
    data: bytes | None = None
    executable: bool = False


@dataclass(frozen=True, slots=True)
class Content:
    """What a push sends: files, plus the empty directories and links of a tree."""

    sources: list[Source]
    directories: tuple[str, ...] = ()
    links: tuple[ArtifactLink, ...] = ()


# The types data and ML pipelines push, fixed here: the system's mime.types differs
# between machines, and a media type is part of the artifact (hence of its digest).
KNOWN_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".json": "application/json",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".html": "text/html",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".xml": "application/xml",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".onnx": "application/onnx",
    ".safetensors": "application/vnd.safetensors",
    ".pt": "application/vnd.pytorch",
    ".pth": "application/vnd.pytorch",
    ".npy": "application/vnd.numpy",
    ".npz": "application/vnd.numpy+zip",
    ".arrow": "application/vnd.apache.arrow.file",
    ".feather": "application/vnd.apache.arrow.file",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".zst": "application/zstd",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
    ".sh": "text/x-shellscript",
    ".py": "text/x-python",
    ".sql": "application/sql",
}
# Python's own table only (no files=…): the same answer on every machine.
_BUILT_IN_TYPES = mimetypes.MimeTypes(filenames=())


def media_type_for(path: str) -> str:
    """The media type for a file name: arca's table, then Python's built-in one."""
    suffix = posixpath.splitext(path.lower())[1]
    if suffix in KNOWN_TYPES:
        return KNOWN_TYPES[suffix]
    guessed, _ = _BUILT_IN_TYPES.guess_type(path, strict=False)
    return guessed if guessed and MEDIA_TYPE.fullmatch(guessed) else DEFAULT_MEDIA_TYPE


def from_files(
    files: Sequence[str | Path] | Mapping[str, str | Path],
    media_types: Mapping[str, str] | None = None,
) -> list[Source]:
    """Files by local path (each named by its file name) or by {artifact path: local path}."""
    named = (
        {path: Path(local) for path, local in files.items()} if isinstance(files, Mapping) else {}
    )
    if not isinstance(files, Mapping):
        for local in map(Path, files):
            if local.name in named:
                raise UsageError(f"two files are named {local.name!r}; name them with a mapping")
            named[local.name] = local
    if not named:
        raise UsageError("an artifact needs at least one file")
    checked(named)
    sources = []
    for path, local in sorted(named.items()):
        try:
            mode = local.stat().st_mode
        except OSError as error:
            raise UsageError(f"{local}: {error.strerror or error}") from None
        if not stat.S_ISREG(mode):
            raise UsageError(f"{local} is not a file")
        media_type = (media_types or {}).get(path) or media_type_for(path)
        executable = bool(mode & stat.S_IXUSR)
        sources.append(Source(path, media_type, local=local, executable=executable))
    return sources


def checked(leaves: Iterable[str], directories: Iterable[str] = ()) -> None:
    try:
        check_names(leaves, directories)
    except UnsafeArtifact as error:
        raise UsageError(f"{error.message}: arca pull could not write it") from None


def from_directory(directory: str | Path, media_types: Mapping[str, str] | None = None) -> Content:
    """The tree under `directory`: every regular file (named by its `/`-separated
    relative path, its executable bit kept), every empty directory, every symlink as a
    link. A link that leads outside `directory`, or a special file (device, fifo,
    socket), is refused."""
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    files: dict[str, Path] = {}
    directories: list[str] = []
    links: list[ArtifactLink] = []
    for parent, names, entries in os.walk(root, onerror=_raise):
        here = Path(parent)
        for entry in [*names, *entries]:
            local = here / entry
            path = local.relative_to(root).as_posix()
            mode = local.lstat().st_mode
            if stat.S_ISLNK(mode):
                links.append(ArtifactLink(path, _link_target(root, local, path)))
            elif stat.S_ISDIR(mode):
                if not any(local.iterdir()):
                    directories.append(path)
            elif stat.S_ISREG(mode):
                files[path] = local
            else:
                raise UsageError(f"{local} is a special file (device, fifo or socket)")
    if not files:
        raise UsageError(f"{root} has no files")
    checked([*files, *(link.path for link in links)], directories)
    return Content(from_files(files, media_types), tuple(directories), tuple(links))


def _raise(error: OSError) -> None:
    raise UsageError(f"{error.filename}: {error.strerror or error}")


def _link_target(root: Path, link: Path, path: str) -> str:
    """The link's target, relative and normalised; refused if it leads outside `root`."""
    raw = os.readlink(link)
    if posixpath.isabs(raw):
        raise UsageError(f"link {path!r} -> {raw!r}: an absolute target cannot be pushed")
    base = posixpath.dirname(path)
    lexical = posixpath.normpath(posixpath.join(base, raw))
    if lexical == "." or lexical == ".." or lexical.startswith("../"):
        raise UsageError(f"link {path!r} -> {raw!r} points outside {root}")
    real = link.resolve()  # followed on disk too: through other links, it must stay inside
    if link.exists() and not real.is_relative_to(root.resolve()):
        raise UsageError(f"link {path!r} -> {raw!r} points outside {root}")
    return posixpath.relpath(lexical, base or ".")


async def describe(source: Source, hashed: Callable[[int], None] | None = None) -> ArtifactFile:
    """The artifact file for `source`: size and both digests, hashed off the event loop;
    `hashed(n)` is called after each chunk (from the hashing thread)."""
    if source.data is not None:
        size, sha256, blake = _hash_bytes(source.data)
        if hashed is not None:
            hashed(size)
    else:
        assert source.local is not None
        size, sha256, blake = await asyncio.to_thread(_hash_file, source.local, hashed)
    return ArtifactFile(
        source.path,
        source.media_type,
        size,
        Digest("sha256", sha256),
        Digest("blake3", blake),
        source.executable,
    )


async def chunks(source: Source, sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The content in CHUNK_SIZE pieces, calling `sent(n)` after each."""
    if source.data is not None:
        for start in range(0, len(source.data), CHUNK_SIZE):
            chunk = source.data[start : start + CHUNK_SIZE]
            yield chunk
            sent(len(chunk))
        return
    assert source.local is not None
    with source.local.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
            yield chunk
            sent(len(chunk))


def _hash_bytes(data: bytes) -> tuple[int, str, str]:
    return len(data), hashlib.sha256(data).hexdigest(), blake3.blake3(data).hexdigest()


def _hash_file(path: Path, hashed: Callable[[int], None] | None) -> tuple[int, str, str]:
    sha256, blake = hashlib.sha256(), blake3.blake3()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            size += len(chunk)
            sha256.update(chunk)
            blake.update(chunk)
            if hashed is not None:
                hashed(len(chunk))
    return size, sha256.hexdigest(), blake.hexdigest()
