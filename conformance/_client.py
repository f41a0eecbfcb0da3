"""A thin HTTP client for one registry under test, and the checks tests share.

Helpers that *set up* state (push a blob, push a manifest) assert the strict
success path, so a registry that fails them fails the test that needed them.
Helpers never decide what the spec allows: the tests do, each in its own words.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx

from conformance._oci import (
    ACCEPT_ALL_MANIFESTS,
    ERROR_CODES,
    Blob,
    Manifest,
    matches_digest,
)

UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
RANGE_RE = re.compile(r"^0-(\d+)$")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
REDIRECTS = {301, 302, 303, 307, 308}


def describe(response: httpx.Response) -> str:
    """One line for assertion messages: the request, the status and a body excerpt."""
    request = response.request
    body = ""
    if request.method != "HEAD":
        try:
            body = response.content[:300].decode("utf-8", "replace")
        except httpx.ResponseNotRead:
            body = "<streamed>"
    return f"{request.method} {request.url} -> {response.status_code} {body!r}"


def with_query(url: str, **params: str) -> str:
    """Append query parameters, keeping any (opaque) query the URL already has."""
    encoded = urlencode(params, quote_via=quote, safe=":/")
    return f"{url}{'&' if '?' in url else '?'}{encoded}"


def resolve_location(response: httpx.Response) -> str:
    """The Location header as an absolute URL: relative values resolve against the request."""
    value = response.headers.get("Location")
    assert value, f"no Location header: {describe(response)}"
    return urljoin(str(response.request.url), value)


def media_type_of(response: httpx.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip()


def expect_status(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, f"expected {statuses}: {describe(response)}"


def error_codes(response: httpx.Response) -> list[str] | None:
    """The codes of an OCI error body, or None when the body is not JSON.

    The spec lets a 4xx body be in any format, but a JSON one MUST be
    `{"errors": [{"code": ..., "message": ..., "detail": ...}]}` with codes
    from its table.
    """
    if response.request.method == "HEAD" or not response.content:
        return None
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    assert isinstance(document, dict), f"JSON error body is not an object: {describe(response)}"
    errors = document.get("errors")
    assert isinstance(errors, list), f"JSON error body has no errors list: {describe(response)}"
    assert errors, f"JSON error body has an empty errors list: {describe(response)}"
    codes = []
    for error in errors:
        assert isinstance(error, dict), f"error entry is not an object: {describe(response)}"
        code = error.get("code")
        assert isinstance(code, str), f"error entry has no code: {describe(response)}"
        assert re.fullmatch(r"[A-Z_]+", code), f"malformed error code {code!r}"
        assert code in ERROR_CODES, f"error code {code!r} is not in the spec: {describe(response)}"
        if "message" in error:
            assert isinstance(error["message"], str), f"message not a string: {describe(response)}"
        codes.append(code)
    return codes


def expect_error(response: httpx.Response, statuses: Iterable[int], codes: Iterable[str]) -> None:
    """A failure with one of `statuses`; a JSON body must carry one of `codes`."""
    statuses = tuple(statuses)
    codes = set(codes)
    expect_status(response, *statuses)
    found = error_codes(response)
    if found is not None and codes:
        assert codes & set(found), f"expected an error code in {sorted(codes)}, got {found}"


def expect_digest_header(response: httpx.Response, body: bytes) -> None:
    """Docker-Content-Digest, when present, MUST match the content it describes.

    It MAY use another algorithm than the request's digest, so it is checked
    against the body under its own algorithm.
    """
    header = response.headers.get("Docker-Content-Digest")
    if header is not None:
        assert matches_digest(body, header.strip()), (
            f"Docker-Content-Digest {header} does not match the content: {describe(response)}"
        )


def range_end(response: httpx.Response) -> int:
    """The <end> of an upload's `Range: 0-<end>` header (MUST be present)."""
    value = response.headers.get("Range")
    assert value is not None, f"no Range header: {describe(response)}"
    match = RANGE_RE.match(value.strip())
    assert match, f"Range {value!r} is not 0-<end>: {describe(response)}"
    return int(match.group(1))


def next_link(response: httpx.Response) -> str | None:
    """The absolute URL of an RFC 5988 Link rel="next", if any."""
    if "Link" not in response.headers:
        return None
    url = (response.links.get("next") or {}).get("url")
    assert url, f"Link header without rel=next: {response.headers['Link']}"
    return urljoin(str(response.request.url), url)


@dataclass
class Registry:
    """One registry under test, by URL, with the helpers the tests share."""

    target: str
    url: str
    http: httpx.Client
    run_id: str
    max_manifest_size: int = 4 * 1024 * 1024
    credentials: tuple[str, str] | None = None
    """A user and password when the registry has auth on (the http client signs in)."""
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def host(self) -> str:
        """host:port, as clients like skopeo and oras want it."""
        return urlsplit(self.url).netloc

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")

    def new_repo(self, label: str) -> str:
        """A repository name no other test (and no earlier run) has used."""
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60] or "repo"
        return f"conformance/{self.run_id}/{slug}-{next(self._counter)}"

    # -- raw requests --------------------------------------------------------

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else self.url + path_or_url
        return self.http.request(method, url, **kwargs)

    def get(self, path_or_url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path_or_url, **kwargs)

    def head(self, path_or_url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", path_or_url, **kwargs)

    def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow redirects of a GET/HEAD, but only to loopback or the registry's host."""
        for _ in range(5):
            if response.status_code not in REDIRECTS:
                return response
            target = resolve_location(response)
            host = urlsplit(target).hostname or ""
            assert host in LOOPBACK or urlsplit(target).netloc == self.host, (
                f"refusing to follow a redirect off this machine: {target}"
            )
            response = self.http.request(response.request.method, target)
        return response

    # -- blobs ---------------------------------------------------------------

    def blob_path(self, repo: str, digest: str) -> str:
        return f"/v2/{repo}/blobs/{digest}"

    def get_blob(self, repo: str, digest: str, **kwargs: Any) -> httpx.Response:
        return self.follow(self.get(self.blob_path(repo, digest), **kwargs))

    def head_blob(self, repo: str, digest: str) -> httpx.Response:
        return self.follow(self.head(self.blob_path(repo, digest)))

    def start_upload(self, repo: str, **params: str) -> httpx.Response:
        url = f"/v2/{repo}/blobs/uploads/"
        if params:
            url = with_query(url, **params)
        return self.request("POST", url, headers={"Content-Length": "0"})

    def open_session(self, repo: str) -> str:
        """POST an upload session (end-4a) and return its absolute Location."""
        response = self.start_upload(repo)
        expect_status(response, 202)
        return resolve_location(response)

    def push_blob(self, repo: str, blob: Blob) -> None:
        """Monolithic POST then PUT (end-4a, end-6), checked strictly."""
        location = self.open_session(repo)
        response = self.request(
            "PUT",
            with_query(location, digest=blob.digest),
            content=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        expect_status(response, 201)

    def push_blobs(self, repo: str, blobs: Iterable[Blob]) -> None:
        for blob in blobs:
            self.push_blob(repo, blob)

    # -- manifests -----------------------------------------------------------

    def manifest_path(self, repo: str, reference: str) -> str:
        return f"/v2/{repo}/manifests/{reference}"

    def put_manifest(
        self,
        repo: str,
        reference: str,
        body: bytes,
        media_type: str,
    ) -> httpx.Response:
        return self.request(
            "PUT",
            self.manifest_path(repo, reference),
            content=body,
            headers={"Content-Type": media_type},
        )

    def push_manifest(
        self,
        repo: str,
        manifest: Manifest,
        reference: str | None = None,
        *,
        with_content: bool = True,
    ) -> httpx.Response:
        """Push blobs, child manifests, then the manifest (end-7); expect 201."""
        if with_content:
            self.push_blobs(repo, manifest.blobs)
            for child in manifest.children:
                self.push_manifest(repo, child)
        response = self.put_manifest(
            repo, reference or manifest.digest, manifest.body, manifest.media_type
        )
        expect_status(response, 201)
        return response

    def get_manifest(
        self, repo: str, reference: str, accept: str | None = ACCEPT_ALL_MANIFESTS
    ) -> httpx.Response:
        headers = {"Accept": accept} if accept is not None else {}
        return self.get(self.manifest_path(repo, reference), headers=headers)

    def head_manifest(
        self, repo: str, reference: str, accept: str | None = ACCEPT_ALL_MANIFESTS
    ) -> httpx.Response:
        headers = {"Accept": accept} if accept is not None else {}
        return self.head(self.manifest_path(repo, reference), headers=headers)

    def expect_manifest(self, repo: str, reference: str, manifest: Manifest) -> None:
        """GET returns the manifest byte for byte, typed and digested correctly."""
        response = self.get_manifest(repo, reference)
        expect_status(response, 200)
        assert response.content == manifest.body, f"manifest bytes differ: {describe(response)}"
        assert media_type_of(response) == manifest.media_type, (
            f"Content-Type {media_type_of(response)!r} is not {manifest.media_type!r}"
        )
        expect_digest_header(response, manifest.body)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    # -- listings ------------------------------------------------------------

    def tags(self, repo: str, **params: str) -> httpx.Response:
        url = f"/v2/{repo}/tags/list"
        return self.get(with_query(url, **params) if params else url)

    def referrers(
        self, repo: str, digest: str, artifact_type: str | None = None
    ) -> tuple[list[httpx.Response], list[dict[str, Any]]]:
        """Every page of GET /v2/<name>/referrers/<digest> (end-12a/12b), following Link."""
        url = self.url + f"/v2/{repo}/referrers/{digest}"
        if artifact_type is not None:
            url = with_query(url, artifactType=artifact_type)
        responses: list[httpx.Response] = []
        descriptors: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url is not None:
            assert len(responses) < 100, "referrers pagination does not end"
            response = self.get(next_url)
            expect_status(response, 200)
            document = response.json()
            assert isinstance(document.get("manifests"), list), describe(response)
            responses.append(response)
            descriptors.extend(document["manifests"])
            next_url = next_link(response)
        return responses, descriptors
