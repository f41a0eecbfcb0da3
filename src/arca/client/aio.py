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
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
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
    UsageError,
    error_for,
    transport_errors,
)
from arca.client.models import (
    ArtifactPage,
    ArtifactRecord,
    ArtifactSummary,
    PullResult,
    PushResult,
    Verification,
)
from arca.errors import RegistryError
from arca.formats.artifact import (
    ARTIFACT_MEDIA_TYPE,
    Artifact,
    ArtifactFile,
    decode_artifact,
    encode_artifact,
    to_oci_manifest,
)
from arca.formats.cbor import Value
from arca.formats.digest import Digest, new_hasher

DEFAULT_REGISTRY = "http://127.0.0.1:5000"
MANIFEST_DIGEST_HEADER = "Arca-Manifest-Digest"
VALUE_FILE = "value.json"

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) as a transfer advances."""

Labels = Mapping[str, str]


class PushOptions(TypedDict, total=False):
    """What every push takes besides its content (all optional, keyword-only)."""

    tag: str | None
    """Tag the artifact; without one it is pushed by digest."""
    tags: Sequence[str]
    """More tags for the same artifact."""
    labels: Labels | None
    title: str | None
    """The artifact's name (default: the repository name)."""
    version: str | None
    """Default: the tag, else empty."""
    created: datetime | None
    """Default: now; orders listings and `latest`."""
    metadata: Value
    progress: Progress | None


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
        return await self._push(
            name, _files.Content(_files.from_files(files, media_types)), options
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
        return await self._push(name, _files.from_directory(directory, media_types), options)

    async def push_value(self, name: str, value: Any, **options: Unpack[PushOptions]) -> PushResult:
        """Push a JSON-serialisable value as the artifact's one file, `value.json`."""
        try:
            data = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise UsageError(f"value is not JSON-serialisable: {error}") from error
        sources = [_files.Source(VALUE_FILE, "application/json", data=data)]
        return await self._push(name, _files.Content(sources), options)

    async def _push(self, name: str, content: _files.Content, options: PushOptions) -> PushResult:
        sources = content.sources
        described = [await _files.describe(source) for source in sources]
        tag = options.get("tag")
        artifact, document = _artifact(name, described, options, content)
        meter = _Meter(sum(file.size for file in described), options.get("progress"))
        uploaded = skipped = 0
        done: set[Digest] = set()
        for source, file in zip(sources, described, strict=True):
            if file.sha256 in done or await self._has_blob(name, file.sha256):
                meter.advance(file.size)
                skipped += 1
            elif await self._upload(name, source, file, meter):
                uploaded += 1
            else:
                skipped += 1
            done.add(file.sha256)
        reference = tag or str(Digest.of(to_oci_manifest(artifact, document)))
        tags = options.get("tags", ())
        query = urlencode([("tag", extra) for extra in tags])
        response = await self._send(
            "PUT",
            f"/v2/{name}/manifests/{reference}" + (f"?{query}" if query else ""),
            content=document,
            headers={"Content-Type": ARTIFACT_MEDIA_TYPE},
        )
        pushed_tags = tuple(dict.fromkeys([*([tag] if tag else []), *tags]))
        digest = response.headers.get("Docker-Content-Digest", "")
        return PushResult(name, digest, pushed_tags, artifact, uploaded, skipped)

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
    ) -> ArtifactPage:
        """One page of `name`'s artifacts, newest first, carrying every label in `labels`."""
        params = _label_params(labels)
        if limit is not None:
            params.append(("limit", str(limit)))
        if cursor is not None:
            params.append(("cursor", cursor))
        body = await self._json("GET", f"/api/v1/repositories/{name}/artifacts", params)
        page = [ArtifactSummary.from_json(item) for item in body["artifacts"]]
        return ArtifactPage(page, body.get("cursor"))

    async def iter_artifacts(
        self, name: str, labels: Labels | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[ArtifactSummary]:
        """Every matching artifact, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(name, labels, limit=page_size, cursor=cursor)
            for artifact in page.artifacts:
                yield artifact
            if page.cursor is None:
                return
            cursor = page.cursor

    async def latest(self, name: str, labels: Labels | None = None) -> ArtifactSummary:
        """The newest artifact carrying every label; NotFound when there is none."""
        # `/-/latest`, not `/latest`: `<x>/artifacts/latest` is the record of `<x>:latest`.
        path = f"/api/v1/repositories/{name}/-/latest"
        body = await self._json("GET", path, _label_params(labels))
        return ArtifactSummary.from_json(body)

    async def get(self, name: str, reference: str) -> ArtifactRecord:
        """One artifact's record: tags, digests, labels, files, size, created time."""
        body = await self._json("GET", f"/api/v1/repositories/{name}/artifacts/{reference}")
        return ArtifactRecord.from_json(body)

    async def verify(self, name: str, reference: str) -> Verification:
        """Have the registry re-hash every blob of the artifact; `ok` says if all match."""
        body = await self._json("POST", f"/api/v1/repositories/{name}/artifacts/{reference}/verify")
        return Verification.from_json(body)

    async def delete_by_label(self, name: str, labels: Labels) -> builtins.list[str]:
        """Delete every artifact carrying all `labels`; the manifest digests deleted."""
        if not labels:
            raise UsageError("deleting by label needs at least one label")
        body = await self._json(
            "DELETE", f"/api/v1/repositories/{name}/artifacts", _label_params(labels)
        )
        return list(body["deleted"])

    async def delete(self, name: str, reference: str) -> str:
        """Delete one artifact (by tag or digest): its manifest and every tag on it."""
        if ":" not in reference:
            head = await self._send(
                "HEAD",
                f"/v2/{name}/manifests/{reference}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            reference = head.headers["Docker-Content-Digest"]
        await self._send("DELETE", f"/v2/{name}/manifests/{reference}")
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
    name: str, files: list[ArtifactFile], options: PushOptions, content: _files.Content
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
        directories=content.directories,
        links=content.links,
    )
    try:
        return artifact, encode_artifact(artifact)
    except RegistryError as error:  # the format's rules, named (docs/cbor-artifacts.md)
        raise UsageError(error.message) from error


def _label_params(labels: Labels | None) -> list[tuple[str, str]]:
    return [("label", f"{key}={value}") for key, value in (labels or {}).items()]
