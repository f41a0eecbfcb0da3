"""Webhooks through a receiver that is down, then flaky, and a server killed midway."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.e2e.content import OCI_MANIFEST, push_image
from tests.e2e.server import ArcaServer, PeakRss, free_port
from tests.e2e.webhook_receiver import Receiver

SECRET = "a webhook secret"
DOWN_SECONDS = 12.0
"""How long the receiver is down at first: the issue's "first minute", shortened (with a
backoff capped at 1 s, a minute would only repeat the same retries for longer)."""
RSS_BOUND = 40 << 20
"""Growth of the server's resident memory allowed while events pile up undelivered."""


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "arca.toml"
    config.write_text(
        "[events]\nstream_poll_seconds = 0.2\nlease_seconds = 3\n"
        "[[events.webhooks]]\n"
        f'name = "ci"\nurl = "http://127.0.0.1:{port}/hook"\nsecret = "{SECRET}"\n'
        "backoff_seconds = 0.05\nbackoff_max_seconds = 1.0\nmax_attempts = 1000\n"
        "timeout_seconds = 2\n"
    )
    return config


def _push(server: ArcaServer, count: int, offset: int) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n in range(offset, offset + count):
            name = f"team/repo{n % 3}"
            manifest = push_image(client, name, f"layer {n}".encode())
            response = client.put(
                f"/v2/{name}/manifests/v{n}",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert response.status_code == 201, response.text


def _all_ids(server: ArcaServer) -> list[str]:
    ids: list[str] = []
    after = ""
    while True:
        page = httpx.get(f"{server.url}/api/v1/events", params={"n": 1000, "after": after}).json()
        ids += [event["id"] for event in page["events"]]
        after = page["cursor"] or after
        if not page["more"]:
            return ids


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_receiver_down_then_flaky_gets_every_event_signed_in_order(tmp_path: Path) -> None:
    port = free_port()
    receiver = Receiver(port, SECRET, fail_every=3)
    env = {"ARCA_CONFIG": str(_config(tmp_path, port))}
    server = ArcaServer(tmp_path / "data", env).start()
    try:
        started = time.monotonic()
        assert server.process is not None
        baseline = PeakRss(server.process.pid)
        with baseline:
            time.sleep(0.3)
        with PeakRss(server.process.pid) as down:
            _push(server, 30, 0)  # 180 events while nobody listens
            time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - started)))
        assert down.peak - baseline.peak < RSS_BOUND, (baseline.peak, down.peak)
        receiver.start()
        expected_first = set(_all_ids(server))
        _wait_for(lambda: len(receiver.ids()) >= len(expected_first) // 2, 60, "half")
        server.kill()  # mid-delivery, no shutdown code runs
        server.start()
        _push(server, 12, 30)
        expected = _all_ids(server)
        assert expected_first <= set(expected)
        _wait_for(lambda: receiver.ids() >= set(expected), 120, "every event")
    finally:
        server.stop()
        receiver.stop()
    assert receiver.bad_signatures == 0
    assert len(expected) == 42 * 6  # per push: 2 blobs x 2 events, manifest.pushed, tag.moved
    assert receiver.calls > len(receiver.accepted)  # the flaky answers were retried
    first_seen: dict[str, list[str]] = {}
    for event in receiver.accepted:
        ids = first_seen.setdefault(event["data"]["repository"], [])
        if event["id"] not in ids:
            ids.append(event["id"])
    for repository, ids in first_seen.items():
        assert ids == sorted(ids), f"{repository} out of order"
    assert os.path.exists(tmp_path / "data" / "events" / "webhooks" / "ci" / "cursor")
