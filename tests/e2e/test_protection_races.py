"""Races of labels after the push and of quotas, on two workers sharing storage
(filesystem, and S3 via moto), over real HTTP:

- clients changing the labels of one artifact at once: every acknowledged change is a
  stored label artifact, and the labels the record, `?label=` listings and a rebuilt
  index show are the changes applied in their stored order (docs/artifacts.md, "Labels
  after the push"), an order that keeps a change made after another one answered
  after it;
- clients pushing into one repository under a quota at once: at most the overshoot
  docs/protection.md allows, and a refused push leaves nothing stored.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import bucket_keys, create_bucket
from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.server import ArcaServer, s3_environment

NAME = "ci/runs"
CLIENTS = 4
CHANGES = 3  # per client
LABEL_PREFIX = "dev.arca.label."

BLOB = 10_000
MAX_BYTES = 50_000
MAX_ARTIFACTS = 3
QUOTA_CONFIG = f"""
[[quotas]]
name = "bytes"
repositories = ["q/bytes"]
max_bytes = {MAX_BYTES}

[[quotas]]
name = "count"
repositories = ["q/count"]
max_artifacts = {MAX_ARTIFACTS}

[protection]
usage_cache_seconds = 0
"""


@dataclass
class Backend:
    """A two-worker server over one storage, and what an offline command needs to
    reach that storage."""

    server: ArcaServer
    env: dict[str, str]
    storage_args: list[str]
    objects: Callable[[], list[str]]
    """The path of every object in the storage."""


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """One server per backend for the module: the tests use repositories of their own."""
    root = tmp_path_factory.mktemp(f"races-{request.param}")
    config = root / "arca.toml"
    config.write_text(QUOTA_CONFIG)
    env = {"ARCA_CONFIG": str(config)}
    objects: Callable[[], list[str]]
    if request.param == "s3":
        endpoint: str = request.getfixturevalue("s3_endpoint")
        bucket = create_bucket(endpoint)
        env.update(s3_environment(endpoint, bucket))
        storage_args: list[str] = []
        objects = functools.partial(bucket_keys, endpoint, bucket)
    else:
        storage_args = ["--storage", str(root / "data")]

        def objects() -> list[str]:
            return [str(p.relative_to(root)) for p in (root / "data").rglob("*") if p.is_file()]

    server = ArcaServer(root / "data", {**env, "ARCA_SERVER_WORKERS": "2"}).start()
    try:
        yield Backend(server, env, storage_args, objects)
    finally:
        server.stop()


# -- labels --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    client: int
    step: int
    set: dict[str, str]
    remove: list[str]
    status: int
    label_digest: str | None
    start: float
    end: float


def _changes_of(client: int) -> list[tuple[dict[str, str], list[str]]]:
    """What `client` changes: a key every client sets (`who`), one of its own, and
    every third change removes the key of the next client or the pushed `origin`."""
    wanted = []
    for step in range(CHANGES):
        labels = {"who": f"c{client}s{step}", f"c{client}": str(step)}
        remove = []
        if step % 3 == 2:
            remove = [f"c{(client + 1) % CLIENTS}" if client % 2 else "origin"]
        wanted.append((labels, remove))
    return wanted


def _label_concurrently(url: str) -> list[Change]:
    def changes(client: int, http: httpx.Client) -> Iterator[Change]:
        for step, (labels, remove) in enumerate(_changes_of(client)):
            start = time.monotonic()
            response = http.post(
                f"/api/v1/repositories/{NAME}/artifacts/run-1/labels",
                json={"set": labels, "remove": remove},
            )
            end = time.monotonic()
            label_digest = response.json()["label_digest"] if response.status_code == 201 else None
            yield Change(
                client, step, labels, remove, response.status_code, label_digest, start, end
            )

    done: list[Change] = _concurrently(url, changes)
    return done


def _stored_order(http: httpx.Client, changes: list[Change]) -> list[tuple[Change, str]]:
    """Each acknowledged change with the time its label artifact records, in the order
    the artifacts say they were stored (time, then digest), checking each artifact
    records exactly what its request asked."""
    timed = []
    for change in changes:
        response = http.get(
            f"/v2/{NAME}/manifests/{change.label_digest}", headers={"Accept": OCI_MANIFEST}
        )
        assert response.status_code == 200, f"acknowledged but not stored: {change}"
        annotations = response.json()["annotations"]
        labels = {
            k.removeprefix(LABEL_PREFIX): v
            for k, v in annotations.items()
            if k.startswith(LABEL_PREFIX)
        }
        removed = [k for k in annotations.get("dev.arca.labels.remove", "").split(",") if k]
        assert (labels, removed) == (change.set, sorted(change.remove)), change
        timed.append((change, annotations["dev.arca.labels.time"]))
    return sorted(timed, key=lambda pair: (pair[1], str(pair[0].label_digest)))


def _seen(http: httpx.Client, digest: str, keys: dict[str, set[str]]) -> dict[str, Any]:
    """The run's labels as its record shows them, and which `?label=K=V` listings (of
    every value ever given) list it."""
    record = http.get(f"/api/v1/repositories/{NAME}/artifacts/run-1").json()
    listed = {}
    for key, values in sorted(keys.items()):
        for value in sorted(values):
            page = http.get(
                f"/api/v1/repositories/{NAME}/artifacts", params={"label": f"{key}={value}"}
            ).json()
            listed[f"{key}={value}"] = digest in [a["digest"] for a in page["artifacts"]]
    return {"labels": record["labels"], "listed": listed}


def _offline(backend: Backend, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "arca", *args, *backend.storage_args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **backend.env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_concurrent_label_changes_all_count_in_their_stored_order(backend: Backend) -> None:
    url = backend.server.url
    pushed = {"status": "fail", "origin": "ci"}
    with httpx.Client(base_url=url, timeout=60) as http:
        manifest = json.loads(push_image(http, NAME, b"run one"))
        manifest["annotations"] = {f"{LABEL_PREFIX}{k}": v for k, v in pushed.items()}
        data = json.dumps(manifest).encode()
        response = http.put(
            f"/v2/{NAME}/manifests/run-1", content=data, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status_code == 201, response.text
        digest = sha256(data)

        changes = _label_concurrently(url)
        refused = [c for c in changes if c.status != 201]
        assert not refused, refused
        assert any(  # they really ran at once
            a.start < b.end and b.start < a.end for a in changes for b in changes if a is not b
        )
        ordered = _stored_order(http, changes)

        # A change asked after another was answered is stored after it: the order is
        # one a serial run of the requests could give.
        position = {id(change): n for n, (change, _) in enumerate(ordered)}
        for first in changes:
            for second in changes:
                if first.end < second.start:
                    assert position[id(first)] < position[id(second)], (first, second)

        expected = dict(pushed)
        for change, _ in ordered:
            expected.update(change.set)
            for key in change.remove:
                expected.pop(key, None)
        keys: dict[str, set[str]] = {key: {value} for key, value in pushed.items()}
        for change in changes:
            for key, value in change.set.items():
                keys.setdefault(key, set()).add(value)
        want = {
            "labels": expected,
            "listed": {
                f"{key}={value}": expected.get(key) == value
                for key, values in keys.items()
                for value in values
            },
        }
        assert _seen(http, digest, keys) == want

        # The index is derived data: rebuilt from storage (nothing writes meanwhile),
        # it shows the same.
        _offline(backend, "index", "rebuild")
        assert _seen(http, digest, keys) == want


# -- quotas --------------------------------------------------------------------------------

# With `usage_cache_seconds = 0` every check counts storage afresh, so the overshoot
# docs/protection.md allows is what pushes checked at the same moment add: with each
# client pushing one thing at a time, at most CLIENTS - 1 pushes beyond the limit.


@dataclass(frozen=True)
class Push:
    target: str  # a blob digest, or a manifest digest
    status: int


def _concurrently(url: str, work: Any) -> list[Any]:
    """`work(client, http)` in CLIENTS threads at once, started together; what they yield."""
    barrier = threading.Barrier(CLIENTS)
    done: list[Any] = []
    lock = threading.Lock()

    def run(client: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            barrier.wait()
            for outcome in work(client, http):
                with lock:
                    done.append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def _usage(backend: Backend) -> dict[str, dict[str, int]]:
    rows = json.loads(_offline(backend, "quota", "--json"))["items"]
    return {row["repository"]: row for row in rows}


def test_concurrent_pushes_pass_a_quota_by_at_most_the_pushes_in_flight(
    backend: Backend,
) -> None:
    url = backend.server.url

    def blobs(client: int, http: httpx.Client) -> Iterator[Push]:
        for step in range(3):  # 120 kB asked for, so some must be refused
            data = f"client {client} blob {step} ".encode().ljust(BLOB, b".")
            digest = sha256(data)
            response = http.post(f"/v2/q/bytes/blobs/uploads/?digest={digest}", content=data)
            yield Push(digest, response.status_code)

    def manifests(client: int, http: httpx.Client) -> Iterator[Push]:
        for step in range(2):  # 8 asked for, at most 6 can pass
            body = json.loads(layer_manifest)
            body["annotations"] = {"run": f"{client}-{step}"}
            data = json.dumps(body).encode()
            response = http.put(
                f"/v2/q/count/manifests/m-{client}-{step}",
                content=data,
                headers={"Content-Type": OCI_MANIFEST},
            )
            yield Push(sha256(data), response.status_code)

    with httpx.Client(base_url=url, timeout=60) as http:
        layer_manifest = push_image(http, "q/count", b"the one layer")
    pushed_blobs = _concurrently(url, blobs)
    pushed_manifests = _concurrently(url, manifests)

    for pushes in (pushed_blobs, pushed_manifests):
        assert {p.status for p in pushes} == {201, 403}, pushes  # the limit was reached
    stored = [p for p in pushed_blobs if p.status == 201]
    assert MAX_BYTES - BLOB < len(stored) * BLOB <= MAX_BYTES + (CLIENTS - 1) * BLOB
    runs = [p for p in pushed_manifests if p.status == 201]
    assert MAX_ARTIFACTS <= len(runs) <= MAX_ARTIFACTS + CLIENTS - 1

    with httpx.Client(base_url=url, timeout=60) as http:
        # What was acknowledged is there; what was refused left nothing behind.
        for push in pushed_blobs:
            response = http.get(f"/v2/q/bytes/blobs/{push.target}")
            assert response.status_code == (200 if push.status == 201 else 404), push
        accept = {"Accept": OCI_MANIFEST}
        for push in pushed_manifests:
            response = http.get(f"/v2/q/count/manifests/{push.target}", headers=accept)
            assert response.status_code == (200 if push.status == 201 else 404), push
        tags = http.get("/v2/q/count/tags/list").json()["tags"]
        assert len(tags) == len(runs)
        # The next push after them is refused.
        more = b"one more".ljust(BLOB, b".")
        answer = http.post(f"/v2/q/bytes/blobs/uploads/?digest={sha256(more)}", content=more)
        assert answer.status_code == 403, answer.text
        assert answer.json()["errors"][0]["code"] == "DENIED"
    # No object anywhere in storage (blob, link, upload session) names a refused blob.
    refused = [p.target.split(":")[1] for p in pushed_blobs if p.status == 403]
    left = [path for path in backend.objects() if any(hex in path for hex in refused)]
    assert not left, left
    if backend.storage_args:
        # `arca quota` counts exactly what was acknowledged (on S3 the reads above
        # say the same: the start of another process there costs ~10 s of the suite).
        usage = _usage(backend)
        assert usage["q/bytes"]["bytes"] == len(stored) * BLOB
        assert usage["q/count"]["artifacts"] == len(runs)
