"""The race harness: clients hammering the same tags, manifests and blobs of one server.

`race(url, clients=N, seconds=S)` pushes a few small images, then runs N threads for S
seconds, each doing random PUT/DELETE/HEAD/GET of a small shared set of tags,
manifests (by tag and by digest) and blobs, and records every request as an `Op`
(what, on which target, status, start and end on one monotonic clock). `check(url,
history)` then asserts what a serial order of those requests would give:

- no 5xx, and every status one the operation may answer;
- every listed tag resolves;
- an acknowledged write that no other write to the same thing overlapped or followed
  is the end state: a tag pushed last resolves to that manifest (and pulls, blobs and
  all, unless a blob of it was deleted afterwards), a tag or manifest deleted last is
  gone, a blob pushed last reads back, one deleted last answers 404.

Later issues (GC, events) can add operations to `_OPERATIONS` and facts to `check`.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

NAME = "race"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAGS = ("t0", "t1", "t2")
IMAGES = 4


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    layer: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


@dataclass(frozen=True)
class Op:
    kind: str  # put-tag, put-digest, delete-tag, delete-digest, get, head, put-blob, ...
    target: str  # a tag, a manifest digest or a blob digest
    value: str | None  # put-tag: the manifest digest it pushed
    status: int
    start: float
    end: float


def images() -> list[Image]:
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2}
    found = []
    for index in range(IMAGES):
        layer = f"layer {index}".encode() * 100
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [
                {"mediaType": "application/octet-stream", "digest": sha256(layer), "size": 1000}
            ],
        }
        found.append(Image(layer, json.dumps(manifest).encode()))
    return found


def _push_blob(client: httpx.Client, data: bytes) -> httpx.Response:
    return client.post(f"/v2/{NAME}/blobs/uploads/?digest={sha256(data)}", content=data)


Result = tuple[str, str, str | None, int]
"""What an action did: its kind, target, the value it wrote (if any), the status."""
Action = Callable[[httpx.Client, random.Random, list[Image]], Result]


def _put_tag(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    image, tag = rng.choice(pool), rng.choice(TAGS)
    response = client.put(
        f"/v2/{NAME}/manifests/{tag}",
        content=image.manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    return "put-tag", tag, image.digest, response.status_code


def _put_digest(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    image = rng.choice(pool)
    response = client.put(
        f"/v2/{NAME}/manifests/{image.digest}",
        content=image.manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    return "put-digest", image.digest, None, response.status_code


def _delete_tag(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    tag = rng.choice(TAGS)
    return "delete-tag", tag, None, client.delete(f"/v2/{NAME}/manifests/{tag}").status_code


def _delete_digest(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    digest = rng.choice(pool).digest
    return (
        "delete-digest",
        digest,
        None,
        client.delete(f"/v2/{NAME}/manifests/{digest}").status_code,
    )


def _read_manifest(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    reference = rng.choice([*TAGS, rng.choice(pool).digest])
    method = rng.choice(["GET", "HEAD"])
    response = client.request(
        method, f"/v2/{NAME}/manifests/{reference}", headers={"Accept": OCI_MANIFEST}
    )
    return method.lower(), reference, None, response.status_code


def _put_blob(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    layer = rng.choice(pool).layer
    return "put-blob", sha256(layer), None, _push_blob(client, layer).status_code


def _delete_blob(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    digest = sha256(rng.choice(pool).layer)
    return "delete-blob", digest, None, client.delete(f"/v2/{NAME}/blobs/{digest}").status_code


def _read_blob(client: httpx.Client, rng: random.Random, pool: list[Image]) -> Result:
    digest = sha256(rng.choice(pool).layer)
    method = rng.choice(["GET", "HEAD"])
    response = client.request(method, f"/v2/{NAME}/blobs/{digest}")
    return f"{method.lower()}-blob", digest, None, response.status_code


# (action, weight): pushes and reads dominate, as in real traffic.
_OPERATIONS: list[tuple[Action, int]] = [
    (_put_tag, 30),
    (_put_digest, 5),
    (_delete_tag, 15),
    (_delete_digest, 8),
    (_read_manifest, 17),
    (_put_blob, 10),
    (_delete_blob, 5),
    (_read_blob, 10),
]
ALLOWED = {  # 400 on a push: a layer was just deleted (MANIFEST_BLOB_UNKNOWN)
    "put-tag": frozenset({201, 400}),
    "put-digest": frozenset({201, 400}),
    "delete-tag": frozenset({202, 404}),
    "delete-digest": frozenset({202, 404}),
    "get": frozenset({200, 404}),
    "head": frozenset({200, 404}),
    "put-blob": frozenset({201}),
    "delete-blob": frozenset({202, 404}),
    "get-blob": frozenset({200, 404}),
    "head-blob": frozenset({200, 404}),
}


def race(
    url: str,
    clients: int = 6,
    seconds: float = 8.0,
    seed: int = 0,
    at_least: dict[str, int] | None = None,
) -> list[Op]:
    """Push the images, then run `clients` threads of random operations for `seconds`;
    longer (up to 4 times) until there are `at_least` operations of each kind given, so
    a loaded machine makes a longer race rather than one too short to mean anything."""
    pool = images()
    with httpx.Client(base_url=url, timeout=60) as client:
        for blob in (b"{}", *(image.layer for image in pool)):
            assert _push_blob(client, blob).status_code == 201
    history: list[Op] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    cap = time.monotonic() + 4 * seconds
    wanted = at_least or {}

    def over() -> bool:
        now = time.monotonic()
        if now >= cap:
            return True
        if now < deadline:
            return False
        with lock:
            done = [op.kind for op in history]
        return all(done.count(kind) >= n for kind, n in wanted.items())

    actions, weights = [a for a, _ in _OPERATIONS], [w for _, w in _OPERATIONS]

    def run(worker: int) -> None:
        rng = random.Random(seed * 1000 + worker)
        with httpx.Client(base_url=url, timeout=60) as client:
            while not over():
                action = rng.choices(actions, weights)[0]
                start = time.monotonic()
                kind, target, value, status = action(client, rng, pool)
                with lock:
                    history.append(Op(kind, target, value, status, start, time.monotonic()))

    threads = [threading.Thread(target=run, args=(worker,)) for worker in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return history


def _unique_last(ops: list[Op], op: Op) -> bool:
    """No other op in `ops` ended after `op` started (overlapped or followed it)."""
    return all(other is op or other.end < op.start for other in ops)


def check(url: str, history: list[Op]) -> dict[str, int]:
    """Assert the end state is one a serial order of `history` gives; returns counts."""
    bad = [op for op in history if op.status >= 500 or op.status not in ALLOWED[op.kind]]
    assert not bad, f"{len(bad)} unexpected answers, e.g. {bad[:5]}"
    pool = {image.digest: image for image in images()}
    layers = {sha256(image.layer): image.layer for image in pool.values()}
    accept = {"Accept": OCI_MANIFEST}
    with httpx.Client(base_url=url, timeout=60) as client:
        listed = client.get(f"/v2/{NAME}/tags/list").json()["tags"] or []
        for tag in listed:
            response = client.get(f"/v2/{NAME}/manifests/{tag}", headers=accept)
            assert response.status_code == 200, (
                f"{tag} is listed but answers {response.status_code}"
            )

        def writes_to_tag(tag: str, digests: set[str]) -> list[Op]:
            return [
                op
                for op in history
                if (op.kind in ("put-tag", "delete-tag") and op.target == tag)
                or (op.kind == "delete-digest" and op.target in digests)
            ]

        for tag in TAGS:
            pushed = {
                op.value
                for op in history
                if op.kind == "put-tag" and op.target == tag and op.value is not None
            }
            touching = writes_to_tag(tag, pushed)
            for op in touching:
                if op.status not in (201, 202) or not _unique_last(touching, op):
                    continue
                response = client.get(f"/v2/{NAME}/manifests/{tag}", headers=accept)
                if op.kind == "put-tag":
                    assert response.status_code == 200, f"last push of {tag} is lost: {op}"
                    assert response.headers["Docker-Content-Digest"] == op.value
                    _pulls(client, history, pool[str(op.value)], op, layers)
                elif op.kind == "delete-tag":
                    assert response.status_code == 404, f"{tag} deleted last but answers: {op}"
                    assert tag not in listed

        for digest in pool:
            writes = [
                op
                for op in history
                if op.status in (201, 202)
                and (
                    (op.kind in ("put-digest", "delete-digest") and op.target == digest)
                    or (op.kind == "put-tag" and op.value == digest)
                )
            ]
            for op in writes:
                if not _unique_last(writes, op):
                    continue
                response = client.get(f"/v2/{NAME}/manifests/{digest}", headers=accept)
                if op.kind == "delete-digest":
                    assert response.status_code == 404, f"deleted last but answers: {op}"
                else:
                    assert response.status_code == 200, f"pushed last but lost: {op}"

        for digest, data in layers.items():
            writes = [
                op
                for op in history
                if op.kind in ("put-blob", "delete-blob") and op.target == digest
            ]
            for op in writes:
                if op.status not in (201, 202) or not _unique_last(writes, op):
                    continue
                response = client.get(f"/v2/{NAME}/blobs/{digest}")
                if op.kind == "put-blob":
                    assert response.status_code == 200, f"pushed last but lost: {op}"
                    assert response.content == data
                else:
                    assert response.status_code == 404, f"deleted last but answers: {op}"
    counts: dict[str, int] = {}
    for op in history:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return counts


def _pulls(
    client: httpx.Client, history: list[Op], image: Image, push: Op, layers: dict[str, bytes]
) -> None:
    """The pushed image pulls whole, unless one of its blobs was deleted after the push."""
    digest = sha256(image.layer)
    deleted_after = any(
        op.kind == "delete-blob" and op.target == digest and op.end >= push.start for op in history
    )
    response = client.get(f"/v2/{NAME}/blobs/{digest}")
    if not deleted_after:
        assert response.status_code == 200, f"a blob of the last push is gone: {push}"
        assert response.content == layers[digest]
