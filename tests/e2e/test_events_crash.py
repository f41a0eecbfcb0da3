"""SIGKILL at random moments during 100 pushes: no acknowledged change lacks its event,
and no event names a change that did not happen."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.server import ArcaServer

PUSHES = 100
KILLS = 4


def _pusher(server: ArcaServer, acknowledged: list[tuple[str, str, str]], done: threading.Event):
    """Push PUSHES manifests one after another, retrying each until it is acknowledged
    (a request cut by a kill is retried once the server is back)."""
    n = 0
    while n < PUSHES:
        name, tag = f"crash/repo{n % 4}", f"v{n}"
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                manifest = push_image(client, name, f"layer {n}".encode())
                response = client.put(
                    f"/v2/{name}/manifests/{tag}",
                    content=manifest,
                    headers={"Content-Type": OCI_MANIFEST},
                )
        except (httpx.HTTPError, AssertionError):
            time.sleep(0.05)
            continue
        if response.status_code == 201:
            acknowledged.append((name, tag, response.headers["Docker-Content-Digest"]))
            assert response.headers["Docker-Content-Digest"] == sha256(manifest)
            n += 1
        else:
            time.sleep(0.05)
    done.set()


def _events(url: str) -> list[dict]:
    found: list[dict] = []
    after = ""
    while True:
        page = httpx.get(f"{url}/api/v1/events", params={"n": 1000, "after": after}).json()
        found += page["events"]
        after = page["cursor"] or after
        if not page["more"]:
            return found


def test_every_acknowledged_push_has_its_event_after_kills(tmp_path: Path) -> None:
    server = ArcaServer(tmp_path / "data").start()
    acknowledged: list[tuple[str, str, str]] = []
    done = threading.Event()
    kills = 0
    pusher = threading.Thread(target=_pusher, args=(server, acknowledged, done), daemon=True)
    pusher.start()
    rng = random.Random(9)
    moments = sorted(rng.sample(range(5, PUSHES - 5), KILLS))
    try:
        for moment in moments:  # a kill at each of these counts of acknowledged pushes
            while len(acknowledged) < moment and not done.is_set():
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))  # somewhere inside the next push
            server.kill()
            kills += 1
            server.start()
        pusher.join(120)
        events = _events(server.url)
    finally:
        server.stop()
    assert kills == KILLS
    assert len(acknowledged) == PUSHES
    pushed = {
        (e["data"]["repository"], e["data"]["digest"])
        for e in events
        if e["type"] == "dev.arca.manifest.pushed"
    }
    moved = {
        (e["data"]["repository"], e["data"]["tag"], e["data"]["digest"])
        for e in events
        if e["type"] == "dev.arca.tag.moved"
    }
    for name, tag, digest in acknowledged:
        assert (name, digest) in pushed, f"acknowledged push of {name}:{tag} has no event"
        assert (name, tag, digest) in moved, f"acknowledged tag {name}:{tag} has no event"
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for name, digest in pushed:  # every recorded push really is in storage
                response = client.head(
                    f"/v2/{name}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}
                )
                assert response.status_code == 200, (name, digest)
            for event in events:
                data = event["data"]
                if event["type"] in ("dev.arca.blob.uploaded", "dev.arca.blob.linked"):
                    blob = client.head(f"/v2/{data['repository']}/blobs/{data['digest']}")
                    assert blob.status_code == 200, event
    finally:
        server.stop()
    ids = [event["id"] for event in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    commits = sorted({int(i.split("-")[0]) for i in ids})
    assert commits == list(range(1, len(commits) + 1)), "the log has a gap"
