"""Online garbage collection against real servers: a collector every second with a
few seconds of grace beside 8 clients pushing, re-using old orphaned layers on purpose
(HEAD and cross-repository mount), moving and deleting tags. No push may fail because
of GC, and every manifest still tagged at the end must pull back intact."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_bucket
from tests.e2e.server import ArcaServer, s3_environment

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GC_ENV = {
    "ARCA_GC_INTERVAL_SECONDS": "1",
    "ARCA_GC_GRACE_SECONDS": "3",
    "ARCA_GC_UNTAGGED": "delete",
    "ARCA_GC_LEASE_SECONDS": "15",
}
CLIENTS = 8
# Not ARCA_*: every ARCA_ variable is a configuration override the server would refuse.
# The two minutes per backend (filesystem, and two replicas over one S3 bucket).
SOAK_SECONDS = float(os.environ.get("TEST_GC_SOAK_SECONDS", "120"))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Deadline:
    """The soak lasts SOAK_SECONDS, or longer on a loaded machine (up to 2 minutes more) until it
    has done what it is for: every client pushed twice, and old blobs were re-used by HEAD
    beside the collector. A slow machine then means a longer soak, not a failed one."""

    until: float
    cap: float
    tally: Tally

    def over(self) -> bool:
        now = time.monotonic()
        done = self.tally.pushes >= 2 * CLIENTS and self.tally.reused_head > 0
        return now >= self.cap or (now >= self.until and done)


@dataclass
class Tally:
    pushes: int = 0
    reused_head: int = 0
    reused_mount: int = 0
    reuploaded: int = 0
    tag_moves: int = 0
    retags: int = 0
    tag_deletes: int = 0
    orphans_made: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class Orphans:
    """Blobs uploaded and named by no manifest, made all through the soak, so that at
    every moment some are at the edge of the grace period: the collector is judging
    them while the clients HEAD, mount and name them (the race that loses blobs)."""

    made: list[tuple[float, str, bytes]] = field(default_factory=list)
    """(when, repository, data)."""

    def edge(self, now: float) -> list[tuple[str, bytes]]:
        grace = float(GC_ENV["ARCA_GC_GRACE_SECONDS"])
        return [(name, data) for when, name, data in self.made if now - when >= grace - 1]


def repository(client: int) -> str:
    return f"team{client % 3}/app{client}"


class Pusher:
    """A docker-like client: HEAD each blob, upload what is missing, PUT the manifest."""

    def __init__(self, urls: list[str], tally: Tally, orphans: Orphans) -> None:
        self.urls = urls
        self.tally = tally
        self.orphans = orphans
        self.pushed: list[tuple[bytes, list[bytes]]] = []
        self.http = httpx.AsyncClient(timeout=60)

    def url(self) -> str:
        return random.choice(self.urls)  # every request may hit another replica

    async def ensure_blob(self, name: str, data: bytes) -> None:
        digest = sha256(data)
        head = await self.http.head(f"{self.url()}/v2/{name}/blobs/{digest}")
        if head.status_code == 200:
            self.tally.reused_head += 1
            return
        if random.random() < 0.5:
            mounted = await self.http.post(
                f"{self.url()}/v2/{name}/blobs/uploads/", params={"mount": digest}
            )
            if mounted.status_code == 201:
                self.tally.reused_mount += 1
                return
            if mounted.status_code != 202:
                self.tally.failures.append(f"mount {digest}: {mounted.status_code}")
                return
        self.tally.reuploaded += 1
        response = await self.http.post(
            f"{self.url()}/v2/{name}/blobs/uploads/?digest={digest}", content=data
        )
        if response.status_code != 201:
            self.tally.failures.append(f"upload {digest}: {response.status_code} {response.text}")

    def old_layers(self, name: str) -> list[bytes]:
        """Two orphans at the edge of the grace period, this repository's first."""
        edge = self.orphans.edge(time.monotonic())
        own = [data for where, data in edge if where == name]
        others = [data for where, data in edge if where != name]
        picked = random.sample(own, min(1, len(own)))
        picked += random.sample(others, min(2 - len(picked), len(others)))
        return picked

    async def push(
        self, name: str, tag: str, image: tuple[bytes, list[bytes]] | None = None
    ) -> None:
        if image is None:
            config = json.dumps({"tag": tag, "nonce": os.urandom(8).hex()}).encode()
            fresh = [os.urandom(random.randint(512, 16384)) for _ in range(random.randint(1, 3))]
            layers = self.old_layers(name) + fresh
        else:
            config, layers = image  # an older image again: its layers may be orphans now
        await asyncio.gather(*(self.ensure_blob(name, blob) for blob in [config, *layers]))
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256(layer),
                        "size": len(layer),
                    }
                    for layer in layers
                ],
            }
        ).encode()
        response = await self.http.put(
            f"{self.url()}/v2/{name}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": MANIFEST},
        )
        if response.status_code != 201:
            self.tally.failures.append(
                f"manifest {name}:{tag}: {response.status_code} {response.text}"
            )
        else:
            self.tally.pushes += 1
            self.pushed.append((config, layers))

    async def run(self, client: int, until: Deadline) -> None:
        number = 0
        name = repository(client)
        while not until.over():
            number += 1
            await self.push(name, f"build-{number}")
            if random.random() < 0.6:
                await self.push(name, "latest")  # the tag moves; its old target is untagged
                self.tally.tag_moves += 1
            if len(self.pushed) > 2 and random.random() < 0.4:
                # An old build promoted again: its manifest and layers, untagged and
                # judged by the collector since, are re-used all at once.
                await self.push(name, "stable", random.choice(self.pushed[:-1]))
                self.tally.retags += 1
            if number > 2 and random.random() < 0.5:
                old = f"build-{random.randint(1, number - 1)}"
                deleted = await self.http.delete(f"{self.url()}/v2/{name}/manifests/{old}")
                if deleted.status_code not in (202, 404):
                    self.tally.failures.append(f"delete {name}:{old}: {deleted.status_code}")
                else:
                    self.tally.tag_deletes += 1


async def make_orphans(url: str, orphans: Orphans, tally: Tally, until: Deadline) -> None:
    """Upload a blob no manifest names, into a client's repository or a seed one, every
    few hundred milliseconds until the soak is over."""
    async with httpx.AsyncClient(timeout=60) as http:
        number = 0
        while not until.over():
            data = os.urandom(random.randint(1024, 8192))
            name = repository(number % CLIENTS) if number % 3 else f"seed{number % 4}"
            response = await http.post(
                f"{url}/v2/{name}/blobs/uploads/?digest={sha256(data)}", content=data
            )
            if response.status_code != 201:
                tally.failures.append(f"orphan upload: {response.status_code}")
            else:
                orphans.made.append((time.monotonic(), name, data))
                tally.orphans_made += 1
            number += 1
            await asyncio.sleep(0.2)


async def soak(urls: list[str]) -> Tally:
    tally = Tally()
    orphans = Orphans()
    grace = float(GC_ENV["ARCA_GC_GRACE_SECONDS"])
    start = time.monotonic() + grace
    until = Deadline(start + SOAK_SECONDS, start + SOAK_SECONDS + 120, tally)
    seeding = asyncio.create_task(make_orphans(urls[0], orphans, tally, until))
    await asyncio.sleep(grace)  # the first orphans reach the edge of the grace period
    pushers = [Pusher(urls, tally, orphans) for _ in range(CLIENTS)]
    try:
        await asyncio.gather(*(p.run(n, until) for n, p in enumerate(pushers)))
        await seeding
    finally:
        seeding.cancel()
        for pusher in pushers:
            await pusher.http.aclose()
    return tally


async def pull_every_tag(url: str) -> int:
    """Every tagged manifest, and every blob it names, read back and re-hashed."""
    pulled = 0
    async with httpx.AsyncClient(timeout=60) as http:
        names = (await http.get(f"{url}/v2/_catalog")).json()["repositories"]
        for name in names:
            tags = (await http.get(f"{url}/v2/{name}/tags/list")).json().get("tags") or []
            for tag in tags:
                response = await http.get(
                    f"{url}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST}
                )
                assert response.status_code == 200, f"{name}:{tag} {response.status_code}"
                document = response.json()
                for descriptor in [document["config"], *document["layers"]]:
                    blob = await http.get(f"{url}/v2/{name}/blobs/{descriptor['digest']}")
                    assert blob.status_code == 200, f"{name}:{tag} {descriptor['digest']}"
                    assert sha256(blob.content) == descriptor["digest"]
                pulled += 1
    return pulled


def check(tally: Tally, pulled: int) -> None:
    print(
        f"\ngc soak: {tally.pushes} pushes, {tally.orphans_made} orphans made,"
        f" {tally.reused_head} HEAD re-uses, {tally.reused_mount} mounts,"
        f" {tally.reuploaded} uploads, {tally.tag_moves} tag moves, {tally.retags} old"
        f" builds re-tagged, {tally.tag_deletes} tag deletes, {pulled} tags pulled back"
    )
    assert tally.failures == []
    assert tally.pushes >= CLIENTS
    assert tally.reused_head > 0  # old blobs really were re-used beside the collector
    assert pulled > 0


@pytest.fixture
def gc_server(tmp_path: Path) -> Iterator[ArcaServer]:
    server = ArcaServer(tmp_path / "data", GC_ENV).start()
    yield server
    server.stop()


def test_gc_every_second_beside_eight_pushing_clients_loses_nothing(gc_server: ArcaServer) -> None:
    tally = asyncio.run(soak([gc_server.url]))
    pulled = asyncio.run(pull_every_tag(gc_server.url))
    check(tally, pulled)
    # The collector really ran, and swept, while the clients pushed.
    assert any((gc_server.storage / "trash").iterdir())


@pytest.fixture
def gc_replicas(tmp_path: Path, s3_endpoint: str) -> Iterator[list[ArcaServer]]:
    env = {**s3_environment(s3_endpoint, create_bucket(s3_endpoint)), **GC_ENV}
    servers = [ArcaServer(tmp_path / "one", env).start(), ArcaServer(tmp_path / "two", env).start()]
    yield servers
    for server in servers:
        server.stop()


def test_gc_on_two_replicas_over_one_bucket_loses_nothing(gc_replicas: list[ArcaServer]) -> None:
    urls = [server.url for server in gc_replicas]
    tally = asyncio.run(soak(urls))
    pulled = asyncio.run(pull_every_tag(urls[1]))
    check(tally, pulled)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_deleted_content_is_freed_answers_404_and_comes_back_from_the_trash(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "data"
    server = ArcaServer(storage, GC_ENV).start()
    http = httpx.Client(base_url=server.url, timeout=60)
    try:
        layer = os.urandom(3 << 20)
        digest = sha256(layer)
        assert (
            http.post(f"/v2/app/blobs/uploads/?digest={digest}", content=layer).status_code == 201
        )
        config = b"{}"
        http.post(f"/v2/app/blobs/uploads/?digest={sha256(config)}", content=config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(config),
                    "size": 2,
                },
                "layers": [
                    {"mediaType": "application/octet-stream", "digest": digest, "size": len(layer)}
                ],
            }
        ).encode()
        put = http.put("/v2/app/manifests/v1", content=manifest, headers={"Content-Type": MANIFEST})
        assert put.status_code == 201
        before = _du(storage / "blobs")
        assert http.delete("/v2/app/manifests/v1").status_code == 202

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _du(storage / "blobs") > before - len(layer):
            time.sleep(0.5)
        assert _du(storage / "blobs") <= before - len(layer)
        assert http.get(f"/v2/app/blobs/{digest}").status_code == 404
        assert http.head(f"/v2/app/blobs/{digest}").status_code == 404
        mount = http.post("/v2/other/blobs/uploads/", params={"mount": digest, "from": "app"})
        assert mount.status_code == 202  # not mounted: there is nothing to mount
        anywhere = http.post("/v2/other/blobs/uploads/", params={"mount": digest})
        assert anywhere.status_code == 202

        server.stop()  # restore works with the server down, from storage alone
        restored = subprocess.run(
            [
                sys.executable,
                "-m",
                "arca",
                "trash",
                "restore",
                sha256(manifest),
                "--storage",
                str(storage),
                "--json",
            ],
            capture_output=True,
            check=True,
        )
        kinds = {item["kind"] for item in json.loads(restored.stdout)["restored"]}
        assert kinds == {"revision", "layer", "blob"}
        server.start()
        back = http.get(f"{server.url}/v2/app/blobs/{digest}")
        assert back.status_code == 200
        assert back.content == layer
        tagged = http.get(f"{server.url}/v2/app/manifests/v1", headers={"Accept": MANIFEST})
        assert tagged.content == manifest

        # The log tells the story: the server's collector swept (no actor: it ran on
        # its timer), and the local user restored.
        page = http.get(f"{server.url}/api/v1/events", params={"n": "1000"}).json()
        by_type = {e["type"].removeprefix("dev.arca."): e["data"] for e in page["events"]}
        assert by_type["gc.swept"]["actor"] is None
        assert by_type["gc.swept"]["blobs"] >= 1
        assert by_type["manifest.restored"]["actor"] == f"local:{getpass.getuser()}"
        assert by_type["manifest.restored"]["tags"] == ["v1"]
    finally:
        http.close()
        server.stop()
