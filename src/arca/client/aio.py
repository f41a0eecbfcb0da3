"""The async client: push, pull, list, latest, verify and delete artifacts on an arca registry.

Pushes speak the OCI API as any client would, then add arca's one extension: each
blob is checked with HEAD and, when missing, uploaded as POST + PUT with the file
streamed in chunks; last, the canonical CBOR document is PUT to the manifests
endpoint (`application/vnd.arca.artifact.v1+cbor`) and arca stores the OCI manifest
it generates. Pulls read the CBOR view and stream each blob to disk (or memory),
checking sha256 and blake3 as the bytes arrive. Listings and verification use /api/v1.

Progress callbacks get `(bytes done, bytes total)` for the whole transfer.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import httpx

from arca.client import _files, _tree, credentials
from arca.client.errors import (
    IntegrityError,
    NotFound,
    ServerError,
    TagExists,
    UsageError,
    error_for,
    transport_errors,
)
from arca.client.models import (
    ArtifactPage,
    ArtifactRecord,
    ArtifactSummary,
    LabelResult,
    PullResult,
    PushResult,
    Referrer,
    Verification,
)
from arca.client.reference import ArtifactRef, generated_tag
from arca.errors import RegistryError
from arca.formats.artifact import (
    ARTIFACT_MEDIA_TYPE,
    Artifact,
    ArtifactFile,
    Subject,
    decode_artifact,
    encode_artifact,
    to_oci_manifest,
)
from arca.formats.cbor import Value
from arca.formats.digest import Digest, new_hasher

DEFAULT_REGISTRY = "http://127.0.0.1:5000"
MANIFEST_DIGEST_HEADER = "Arca-Manifest-Digest"
VALUE_FILE = "value.json"
TEXT_FILE = "text.txt"
BYTES_FILE = "data.bin"
_ACCEPT_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) as a transfer advances."""

Labels = Mapping[str, str]


class PushOptions(TypedDict, total=False):
    """What every push takes besides its content (all optional, keyword-only)."""

    tag: str | None
    """Tag the artifact; without one it is pushed by digest (or see `generate_tag`)."""
    tags: Sequence[str]
    """More tags for the same artifact."""
    generate_tag: bool
    """Without `tag`: tag it `[<template_id>-]<UTC time>-<short digest>` (reference.py)."""
    force: bool
    """Move a tag that already names another artifact; refused (TagExists) otherwise."""
    labels: Labels | None
    title: str | None
    """The artifact's name (default: the repository name)."""
    version: str | None
    """Default: the tag, else empty."""
    created: datetime | None
    """Default: now; orders listings and `latest`."""
    metadata: Value
    subject: str | ArtifactRef | None
    """The artifact this one is about (`@DIGEST`, `NAME@DIGEST` or a tag of the same
    repository): it is listed among the subject's referrers."""
    artifact_type: str | None
    """The OCI manifest's artifactType (default: arca's own)."""
    progress: Progress | None
    hash_progress: Progress | None
    """Called as the files are hashed, before anything is sent (bytes done, total)."""


@dataclass(frozen=True, slots=True)
class PreparedPush:
    """An artifact hashed and encoded but not sent: its digest is known before the push."""

    name: str
    digest: str
    """The OCI manifest digest the push will give."""
    artifact: Artifact
    document: bytes
    sources: tuple[_files.Source, ...]
    tags: tuple[str, ...]
    force: bool
    progress: Progress | None = field(default=None, compare=False)

    @property
    def ref(self) -> ArtifactRef:
        return ArtifactRef(self.name, digest=self.digest)


class _Meter:
    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total, self.done, self._callback = total, 0, callback
        self.advance(0)

    def advance(self, count: int) -> None:
        self.done += count
        if self._callback is not None:
            self._callback(self.done, self.total)


class AsyncArcaClient:
    """An arca registry at `registry` (e.g. http://127.0.0.1:5000). Use `async with`."""

    def __init__(
        self,
        registry: str = DEFAULT_REGISTRY,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        """`auth` defaults to the login stored for `registry` (`arca login`; docs/auth.md)."""
        self.registry = registry.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.registry,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            auth=auth if auth is not None else credentials.auth_for(self.registry),
        )

    async def __aenter__(self) -> AsyncArcaClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- push ---------------------------------------------------------------------------

    async def push_files(
        self,
        name: str,
        files: Sequence[str | Path] | Mapping[str, str | Path],
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        """Push files as one artifact: a list of paths (named by file name) or a mapping
        {path in the artifact: local path}. Without `tag` it is pushed by digest."""
        return await self.push_prepared(
            await self.prepare_files(name, files, media_types=media_types, **options)
        )

    async def push_directory(
        self,
        name: str,
        directory: str | Path,
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        """Push the tree under `directory`: every file (named by its relative path, its
        executable bit kept), every empty directory, every symlink as a link."""
        return await self.push_prepared(
            await self.prepare_directory(name, directory, media_types=media_types, **options)
        )

    async def push_value(self, name: str, value: Any, **options: Unpack[PushOptions]) -> PushResult:
        """Push a JSON-serialisable value as the artifact's one file, `value.json`."""
        try:
            data = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise UsageError(f"value is not JSON-serialisable: {error}") from error
        return await self.push_bytes(
            name, data, path=VALUE_FILE, media_type="application/json", **options
        )

    async def push_text(
        self,
        name: str,
        text: str,
        *,
        path: str = TEXT_FILE,
        media_type: str | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        """Push `text` (UTF-8) as the artifact's one file, `path` (default `text.txt`)."""
        chosen = media_type or _files.media_type_for(path)
        if chosen == _files.DEFAULT_MEDIA_TYPE:
            chosen = "text/plain"
        return await self.push_bytes(
            name, text.encode("utf-8"), path=path, media_type=chosen, **options
        )

    async def push_bytes(
        self,
        name: str,
        data: bytes,
        *,
        path: str = BYTES_FILE,
        media_type: str | None = None,
        **options: Unpack[PushOptions],
    ) -> PushResult:
        """Push `data` as the artifact's one file, `path` (default `data.bin`)."""
        source = _files.Source(path, media_type or _files.media_type_for(path), data=bytes(data))
        content = _files.Content([source])
        return await self.push_prepared(await self._prepare(name, content, options))

    async def prepare_files(
        self,
        name: str,
        files: Sequence[str | Path] | Mapping[str, str | Path],
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PreparedPush:
        """Hash and encode what `push_files` would push; `.digest` is the artifact's id."""
        content = _files.Content(_files.from_files(files, media_types))
        return await self._prepare(name, content, options)

    async def prepare_directory(
        self,
        name: str,
        directory: str | Path,
        *,
        media_types: Mapping[str, str] | None = None,
        **options: Unpack[PushOptions],
    ) -> PreparedPush:
        """Hash and encode what `push_directory` would push; `.digest` is its id."""
        content = _files.from_directory(directory, media_types)
        return await self._prepare(name, content, options)

    async def _prepare(
        self, name: str, content: _files.Content, options: PushOptions
    ) -> PreparedPush:
        described = await _describe_all(content.sources, options.get("hash_progress"))
        moment = (options.get("created") or datetime.now(UTC)).replace(microsecond=0)
        subject = options.get("subject")
        artifact, document = _artifact(
            name,
            described,
            {**options, "created": moment},
            content,
            None if subject is None else await self._subject(name, subject),
        )
        digest = str(Digest.of(to_oci_manifest(artifact, document)))
        tag = options.get("tag")
        if tag is None and options.get("generate_tag"):
            tag = generated_tag(dict(artifact.labels), moment, digest)
        tags = tuple(dict.fromkeys([*([tag] if tag else []), *options.get("tags", ())]))
        return PreparedPush(
            name,
            digest,
            artifact,
            document,
            tuple(content.sources),
            tags,
            bool(options.get("force")),
            options.get("progress"),
        )

    async def push_prepared(self, prepared: PreparedPush) -> PushResult:
        """Send a prepared artifact: missing blobs, then the document (tags checked first)."""
        name, artifact = prepared.name, prepared.artifact
        if not prepared.force:
            for tag in prepared.tags:
                await self._check_tag_free(name, tag, prepared.digest)
        files = {file.path: file for file in artifact.files}
        meter = _Meter(sum(file.size for file in artifact.files), prepared.progress)
        uploaded = skipped = 0
        done: set[Digest] = set()
        for source in prepared.sources:
            file = files[source.path]
            if file.sha256 in done or await self._has_blob(name, file.sha256):
                meter.advance(file.size)
                skipped += 1
            elif await self._upload(name, source, file, meter):
                uploaded += 1
            else:
                skipped += 1
            done.add(file.sha256)
        reference = prepared.tags[0] if prepared.tags else prepared.digest
        query = urlencode([("tag", extra) for extra in prepared.tags[1:]])
        response = await self._send(
            "PUT",
            f"/v2/{name}/manifests/{reference}" + (f"?{query}" if query else ""),
            content=prepared.document,
            headers={"Content-Type": ARTIFACT_MEDIA_TYPE},
        )
        digest = response.headers.get("Docker-Content-Digest", "")
        if digest and digest != prepared.digest:
            raise ServerError(
                response.status_code,
                "DIGEST_MISMATCH",
                f"the registry stored {digest}, not the {prepared.digest} arca generates",
            )
        return PushResult(name, digest, prepared.tags, artifact, uploaded, skipped)

    async def _check_tag_free(self, name: str, tag: str, digest: str) -> None:
        """A tag that names another artifact is not moved without `force`. Checked here,
        before anything is sent; two pushes racing for one new tag can both pass."""
        try:
            head = await self._send(
                "HEAD", f"/v2/{name}/manifests/{tag}", headers={"Accept": _ACCEPT_MANIFESTS}
            )
        except NotFound:
            return
        current = head.headers.get("Docker-Content-Digest")
        if current != digest:
            raise TagExists(
                f"{name}:{tag} already names {current}; push with force (--force) to move it"
            )

    async def _subject(self, name: str, subject: str | ArtifactRef) -> Subject:
        """The descriptor of `subject`, which must be in repository `name`."""
        if isinstance(subject, str):
            ref = ArtifactRef.parse(subject if not subject.startswith("@") else name + subject)
        else:
            ref = subject
        if ref.name != name:
            raise UsageError(
                f"subject {ref} is in another repository: referrers are listed per"
                f" repository, so push to {ref.name} or copy the subject here"
            )
        head = await self._send(
            "HEAD",
            f"/v2/{name}/manifests/{(await self.resolve(ref)).reference}",
            headers={"Accept": _ACCEPT_MANIFESTS},
        )
        return Subject(
            head.headers.get("Content-Type", "").split(";")[0],
            Digest.parse(head.headers["Docker-Content-Digest"]),
            int(head.headers["Content-Length"]),
        )

    async def resolve(self, ref: str | ArtifactRef) -> ArtifactRef:
        """`ref` with its full manifest digest: a tag is looked up, a short digest
        (as `arca ls` prints it) is completed when exactly one artifact has it."""
        if isinstance(ref, str):
            ref = ArtifactRef.parse(ref)
        if ref.digest is not None and not ref.is_short:
            return ref
        if ref.digest is not None:
            body = await self._json(
                "GET",
                f"/api/v1/repositories/{ref.name}/-/digests/{ref.digest.removeprefix('sha256:')}",
            )
            return ArtifactRef(ref.name, ref.tag, str(body["digest"]))
        head = await self._send(
            "HEAD", f"/v2/{ref.name}/manifests/{ref.tag}", headers={"Accept": _ACCEPT_MANIFESTS}
        )
        return ArtifactRef(ref.name, ref.tag, head.headers["Docker-Content-Digest"])

    async def _has_blob(self, name: str, digest: Digest) -> bool:
        try:
            await self._send("HEAD", f"/v2/{name}/blobs/{digest}")
        except NotFound:
            return False
        return True

    async def _upload(
        self, name: str, source: _files.Source, file: ArtifactFile, meter: _Meter
    ) -> bool:
        """Monolithic upload: POST opens a session, one PUT streams the bytes and closes it.

        The POST asks to mount the blob from wherever the registry has it (OCI end-11
        without `from`): a 201 means no bytes need to travel; False is returned.
        """
        started = await self._send("POST", f"/v2/{name}/blobs/uploads/?mount={file.sha256}")
        if started.status_code == 201:
            meter.advance(file.size)
            return False
        location = started.headers.get("Location")
        if not location:
            raise ServerError(started.status_code, "NO_LOCATION", "upload without a Location")
        separator = "&" if "?" in location else "?"  # keep the session's own parameters
        await self._send(
            "PUT",
            f"{location}{separator}{urlencode({'digest': str(file.sha256)})}",
            content=_files.chunks(source, meter.advance),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(file.size)},
        )
        return True

    # -- pull ---------------------------------------------------------------------------

    async def artifact(self, name: str, reference: str) -> tuple[str, Artifact]:
        """(manifest digest, artifact) from the CBOR view of `reference`."""
        reference = await self._full(name, reference)
        response = await self._send(
            "GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": ARTIFACT_MEDIA_TYPE}
        )
        document = response.content
        claimed = response.headers.get("Docker-Content-Digest")
        if response.headers.get("Content-Type", "").split(";")[0] != ARTIFACT_MEDIA_TYPE:
            raise ServerError(response.status_code, "NOT_ARCA", "the registry sent no CBOR view")
        if claimed is not None and claimed != str(Digest.of(document)):
            raise IntegrityError(
                f"{name}:{reference}: the artifact document does not match {claimed}"
            )
        try:
            artifact = decode_artifact(document)
        except RegistryError as error:
            raise ServerError(response.status_code, error.code.name, error.message) from error
        return response.headers.get(MANIFEST_DIGEST_HEADER, claimed or ""), artifact

    async def pull(
        self,
        name: str,
        reference: str,
        directory: str | Path,
        *,
        progress: Progress | None = None,
    ) -> PullResult:
        """Write the artifact's files under `directory`, each checked as it streams."""
        digest, artifact = await self.artifact(name, reference)
        _tree.check_names(
            [*(file.path for file in artifact.files), *(link.path for link in artifact.links)],
            artifact.directories,
        )
        with _tree.staging(Path(directory)) as stage:
            targets = [stage.target(file.path) for file in artifact.files]
            links = [(stage.target(link.path), link.target) for link in artifact.links]
            directories = [stage.directory(path) for path in artifact.directories]
            for target in [*targets, *(link for link, _ in links), *directories]:
                stage.check_parents(target)
            meter = _Meter(sum(file.size for file in artifact.files), progress)
            for file, target in zip(artifact.files, targets, strict=True):
                with stage.temporary(target, executable=file.executable) as out:
                    await self._download(name, file, out.write, meter)
            for link, link_target in links:
                stage.link(link, link_target)
            for created in directories:
                stage.make_directory(created)
            stage.commit()
        return PullResult(name, digest, artifact, tuple(targets))

    async def pull_files(
        self, name: str, reference: str, *, progress: Progress | None = None
    ) -> dict[str, bytes]:
        """The artifact's files in memory, {path: content}, each checked."""
        _, artifact = await self.artifact(name, reference)
        meter = _Meter(sum(file.size for file in artifact.files), progress)
        contents = {}
        for file in artifact.files:
            buffer = bytearray()
            await self._download(name, file, buffer.extend, meter)
            contents[file.path] = bytes(buffer)
        return contents

    async def pull_bytes(self, name: str, reference: str, *, path: str | None = None) -> bytes:
        """One file's content: `path`, or the artifact's only file."""
        buffer = bytearray()
        await self.pull_file_to(name, reference, buffer.extend, path=path)
        return bytes(buffer)

    async def pull_text(
        self, name: str, reference: str, *, path: str | None = None, encoding: str = "utf-8"
    ) -> str:
        """One file's content as text (`push_text` wrote UTF-8)."""
        data = await self.pull_bytes(name, reference, path=path)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as error:
            raise UsageError(f"{name}:{reference} is not {encoding} text: {error}") from error

    async def pull_file_to(
        self,
        name: str,
        reference: str,
        write: Callable[[bytes], object],
        *,
        path: str | None = None,
        progress: Progress | None = None,
    ) -> ArtifactFile:
        """Stream one file (`path`, or the only one) to `write`, checked as it goes: the
        bytes are written before the end is verified, so an IntegrityError at the end
        means what was written must be thrown away (`arca pull --stdout` exits 1)."""
        _, artifact = await self.artifact(name, reference)
        file = _one_file(name, reference, artifact, path)
        await self._download(name, file, write, _Meter(file.size, progress))
        return file

    async def pull_value(self, name: str, reference: str) -> Any:
        """The value `push_value` stored (or the JSON of an artifact's only file)."""
        files = await self.pull_files(name, reference)
        data = files.get(VALUE_FILE) or (next(iter(files.values())) if len(files) == 1 else None)
        if data is None:
            raise UsageError(f"{name}:{reference} has no {VALUE_FILE} and more than one file")
        try:
            return json.loads(data)
        except ValueError as error:
            raise UsageError(f"{name}:{reference} does not hold JSON: {error}") from error

    async def _download(
        self, name: str, file: ArtifactFile, write: Callable[[bytes], object], meter: _Meter
    ) -> None:
        sha256, blake = new_hasher("sha256"), new_hasher("blake3")
        size = 0
        url = f"/v2/{name}/blobs/{file.sha256}"
        with transport_errors(self.registry):
            async with self._http.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise error_for(response)
                async for chunk in response.aiter_bytes(_files.CHUNK_SIZE):
                    if size + len(chunk) > file.size:  # stop at the declared size
                        raise IntegrityError(
                            f"{file.path}: the registry sent more than the declared"
                            f" {file.size} bytes of {file.sha256}"
                        )
                    sha256.update(chunk)
                    blake.update(chunk)
                    write(chunk)
                    size += len(chunk)
                    meter.advance(len(chunk))
        found = (size, sha256.digest(), blake.digest())
        if found != (file.size, file.sha256, file.blake3):
            raise IntegrityError(
                f"{file.path}: expected {file.size} bytes {file.sha256} {file.blake3},"
                f" got {size} bytes {found[1]} {found[2]}"
            )

    # -- /api/v1 ------------------------------------------------------------------------

    async def list(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> ArtifactPage:
        """One page of `name`'s artifacts, newest first, carrying every label in `labels`,
        created at or after `since` and at or before `until` (a timedelta: that long ago)."""
        params = _label_params(labels) + _window_params(since, until)
        if limit is not None:
            params.append(("limit", str(limit)))
        if cursor is not None:
            params.append(("cursor", cursor))
        body = await self._json("GET", f"/api/v1/repositories/{name}/artifacts", params)
        page = [ArtifactSummary.from_json(item) for item in body["artifacts"]]
        return ArtifactPage(page, body.get("cursor"))

    async def iter_artifacts(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        page_size: int | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> AsyncIterator[ArtifactSummary]:
        """Every matching artifact, newest first, page after page."""
        since, until = absolute_time(since), absolute_time(until)  # one window for every page
        cursor: str | None = None
        while True:
            page = await self.list(
                name, labels, limit=page_size, cursor=cursor, since=since, until=until
            )
            for artifact in page.artifacts:
                yield artifact
            if page.cursor is None:
                return
            cursor = page.cursor

    async def latest(
        self,
        name: str,
        labels: Labels | None = None,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> ArtifactSummary:
        """The newest artifact carrying every label (created in the window, if given);
        NotFound when there is none."""
        # `/-/latest`, not `/latest`: `<x>/artifacts/latest` is the record of `<x>:latest`.
        path = f"/api/v1/repositories/{name}/-/latest"
        body = await self._json("GET", path, _label_params(labels) + _window_params(since, until))
        return ArtifactSummary.from_json(body)

    async def get(self, name: str, reference: str) -> ArtifactRecord:
        """One artifact's record: tags, digests, labels, files, size, created time."""
        reference = await self._full(name, reference)
        body = await self._json("GET", f"/api/v1/repositories/{name}/artifacts/{reference}")
        return ArtifactRecord.from_json(body)

    async def verify(self, name: str, reference: str) -> Verification:
        """Have the registry re-hash every blob of the artifact; `ok` says if all match."""
        reference = await self._full(name, reference)
        body = await self._json("POST", f"/api/v1/repositories/{name}/artifacts/{reference}/verify")
        return Verification.from_json(body)

    async def delete_by_label(
        self,
        name: str,
        labels: Labels,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> builtins.list[str]:
        """Delete every artifact carrying all `labels` (created in the window, if given);
        the manifest digests deleted."""
        if not labels:
            raise UsageError("deleting by label needs at least one label")
        params = _label_params(labels) + _window_params(since, until)
        body = await self._json("DELETE", f"/api/v1/repositories/{name}/artifacts", params)
        return list(body["deleted"])

    async def label(
        self,
        name: str,
        reference: str,
        labels: Labels | None = None,
        *,
        remove: Sequence[str] = (),
    ) -> LabelResult:
        """Set `labels` and remove the keys in `remove` on the artifact `reference` names,
        after its push and without changing its digest (docs/artifacts.md, "Labels after
        the push"); the newest change of a key wins."""
        if not labels and not remove:
            raise UsageError("label needs labels to set or keys to remove")
        reference = await self._full(name, reference)
        response = await self._send(
            "POST",
            f"/api/v1/repositories/{name}/artifacts/{reference}/labels",
            json={"set": dict(labels or {}), "remove": list(remove)},
        )
        return LabelResult.from_json(response.json())

    async def tag(self, name: str, reference: str, tag: str, *, force: bool = False) -> str:
        """Point `tag` at the artifact `reference` names (the same manifest bytes, so the
        same digest); a tag naming another artifact moves only with `force`."""
        reference = await self._full(name, reference)
        response = await self._send(
            "GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": _ACCEPT_MANIFESTS}
        )
        digest = response.headers.get("Docker-Content-Digest") or str(Digest.of(response.content))
        if not force:
            await self._check_tag_free(name, tag, digest)
        await self._send(
            "PUT",
            f"/v2/{name}/manifests/{tag}",
            content=response.content,
            headers={"Content-Type": response.headers.get("Content-Type", "")},
        )
        return digest

    async def untag(self, name: str, tag: str) -> str:
        """Remove `tag` only (the artifact stays, by digest and other tags); its digest."""
        if ":" in tag:
            raise UsageError(f"{tag!r} is a digest, not a tag: delete removes an artifact")
        digest = (await self.resolve(ArtifactRef(name, tag=tag))).reference
        await self._send("DELETE", f"/v2/{name}/manifests/{tag}")
        return digest

    async def referrers(
        self, name: str, reference: str, *, artifact_type: str | None = None
    ) -> builtins.list[Referrer]:
        """The artifacts whose `subject` is `reference` (reports, SBOMs, verdicts), every
        page, as the OCI referrers API lists them."""
        digest = (await self.resolve(ArtifactRef(name, *_split(reference)))).digest
        url: str | None = f"/v2/{name}/referrers/{digest}"
        params = [("artifactType", artifact_type)] if artifact_type else None
        found: builtins.list[Referrer] = []
        while url is not None:
            response = await self._send("GET", url, params=params)
            found.extend(Referrer.from_json(item) for item in response.json().get("manifests", []))
            url, params = _next_link(response), None
        return found

    async def repositories(self) -> builtins.list[str]:
        """Every repository name (`/v2/_catalog`, page after page)."""
        url: str | None = "/v2/_catalog"
        names: builtins.list[str] = []
        while url is not None:
            response = await self._send("GET", url)
            names.extend(response.json().get("repositories") or [])
            url = _next_link(response)
        return names

    async def delete(self, name: str, reference: str) -> str:
        """Delete one artifact (by tag or digest): its manifest and every tag on it."""
        reference = await self._full(name, reference)
        if ":" not in reference:
            head = await self._send(
                "HEAD",
                f"/v2/{name}/manifests/{reference}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            reference = head.headers["Docker-Content-Digest"]
        await self._send("DELETE", f"/v2/{name}/manifests/{reference}")
        return reference

    async def pins(self, name: str | None = None) -> builtins.list[dict[str, Any]]:
        """The pins of `name` (every repository's you may pull, when None): each a dict
        with name, reference (a tag or digest), reason, actor, created."""
        path = "/api/v1/pins" if name is None else f"/api/v1/repositories/{name}/-/pins"
        return list((await self._json("GET", path))["pins"])

    async def pin(self, name: str, reference: str, *, reason: str = "") -> dict[str, Any]:
        """Pin a manifest (digest) or a tag, so retention and GC keep it (docs/lifecycle.md)."""
        reference = await self._full(name, reference)
        response = await self._send(
            "PUT", f"/api/v1/repositories/{name}/-/pins/{reference}", json={"reason": reason}
        )
        body: dict[str, Any] = response.json()
        return body

    async def unpin(self, name: str, reference: str) -> dict[str, Any]:
        """Remove a pin; NotFound if there is none."""
        reference = await self._full(name, reference)
        return await self._json("DELETE", f"/api/v1/repositories/{name}/-/pins/{reference}")

    async def _full(self, name: str, reference: str) -> str:
        """A tag or full digest as it is; `sha256:<prefix>` completed (`resolve`)."""
        ref = ArtifactRef(name, digest=reference) if reference.startswith("sha256:") else None
        if ref is not None and ref.is_short:
            return (await self.resolve(ref)).reference
        return reference

    # -- HTTP ---------------------------------------------------------------------------

    async def _json(
        self, method: str, url: str, params: builtins.list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        response = await self._send(method, url, params=params or None)
        try:
            body = response.json()
        except ValueError as error:
            raise ServerError(response.status_code, "NOT_JSON", f"{url}: not JSON") from error
        if not isinstance(body, dict):
            raise ServerError(response.status_code, "NOT_JSON", f"{url}: not a JSON object")
        return body

    async def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One request; any non-2xx answer raised as the client's error for it."""
        with transport_errors(self.registry):
            response = await self._http.request(method, url, **options)
        if response.is_success:
            return response
        raise error_for(response)


def _artifact(
    name: str,
    files: list[ArtifactFile],
    options: PushOptions,
    content: _files.Content,
    subject: Subject | None,
) -> tuple[Artifact, bytes]:
    moment = options.get("created") or datetime.now(UTC)
    version = options.get("version")
    artifact = Artifact(
        name=options.get("title") or name,
        version=version if version is not None else options.get("tag") or "",
        created=moment.replace(microsecond=0),
        labels=dict(options.get("labels") or {}),
        metadata=options.get("metadata"),
        files=tuple(files),
        subject=subject,
        artifact_type=options.get("artifact_type"),
        directories=content.directories,
        links=content.links,
    )
    try:
        return artifact, encode_artifact(artifact)
    except RegistryError as error:  # the format's rules, named (docs/cbor-artifacts.md)
        raise UsageError(error.message) from error


async def _describe_all(
    sources: Sequence[_files.Source], progress: Progress | None
) -> list[ArtifactFile]:
    total = 0
    for source in sources:
        if source.data is not None:
            total += len(source.data)
        elif source.local is not None:
            with contextlib.suppress(OSError):
                total += source.local.stat().st_size
    meter = _Meter(total, progress)
    return [await _files.describe(source, meter.advance) for source in sources]


def _one_file(name: str, reference: str, artifact: Artifact, path: str | None) -> ArtifactFile:
    if path is None:
        if len(artifact.files) != 1:
            raise UsageError(
                f"{name}:{reference} has {_plural(len(artifact.files), 'file')}; name one"
            )
        return artifact.files[0]
    for file in artifact.files:
        if file.path == path:
            return file
    raise UsageError(f"{name}:{reference} has no file {path!r}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _split(reference: str) -> tuple[str | None, str | None]:
    """(tag, digest) of a reference string: a digest has a `:`, a tag cannot."""
    return (None, reference) if ":" in reference else (reference, None)


def absolute_time(moment: datetime | timedelta | None) -> datetime | None:
    if isinstance(moment, timedelta):
        return datetime.now(UTC) - moment
    if moment is not None and moment.tzinfo is None:
        raise UsageError(f"{moment.isoformat()} has no time zone: give one (e.g. UTC)")
    return moment


def _window_params(
    since: datetime | timedelta | None, until: datetime | timedelta | None
) -> list[tuple[str, str]]:
    params = []
    for key, value in (("since", absolute_time(since)), ("until", absolute_time(until))):
        if value is not None:
            params.append((key, value.astimezone(UTC).isoformat().replace("+00:00", "Z")))
    return params


def _next_link(response: httpx.Response) -> str | None:
    """The `rel="next"` URL of a paged /v2 answer (relative to the registry)."""
    link = response.headers.get("Link", "")
    match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
    if match is None:
        return None
    url = httpx.URL(match[1])
    return url.raw_path.decode("ascii") if url.is_absolute_url else match[1]


def _label_params(labels: Labels | None) -> list[tuple[str, str]]:
    return [("label", f"{key}={value}") for key, value in (labels or {}).items()]
