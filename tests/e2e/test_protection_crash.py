"""kill -9 while labels are added after a push, and during a quota-checked upload, then a
restart on the same storage (tests/e2e/crash.py): nothing unacknowledged shows as done,
a retry converges, and the index, a rebuild and the quota count agree."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.crash import CrashingServer, CrashPoint
from tests.e2e.server import ArcaServer

get = functools.partial(httpx.get, timeout=60)
post = functools.partial(httpx.post, timeout=60)
patch = functools.partial(httpx.patch, timeout=60)
put = functools.partial(httpx.put, timeout=60)

CONFIG = """
[[quotas]]
name = "small"
repositories = ["q/*"]
max_bytes = 100000

[protection]
usage_cache_seconds = 0
"""
LABELS = "/api/v1/repositories/ci/runs/artifacts/run-1/labels"


def _config(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "arca.toml"
    path.write_text(CONFIG)
    return {"ARCA_CONFIG": str(path)}


def dies(method: str, url: str, **kwargs: Any) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.request(method, url, timeout=60, **kwargs)


def _labels_seen(url: str) -> dict[str, Any]:
    """Where the run's status shows: its record, a label listing, latest with the label."""
    record = get(f"{url}/api/v1/repositories/ci/runs/artifacts/run-1").json()
    passing = get(f"{url}/api/v1/repositories/ci/runs/artifacts?label=status=pass").json()
    failing = get(f"{url}/api/v1/repositories/ci/runs/artifacts?label=status=fail").json()
    return {
        "record": record["labels"].get("status"),
        "pass": [a["digest"] for a in passing["artifacts"]],
        "fail": [a["digest"] for a in failing["artifacts"]],
    }


def _rebuild(storage: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "arca", "index", "rebuild", "--storage", str(storage)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "point",
    [
        # The label manifest stored, its referrer entry not yet: nothing of it counts.
        CrashPoint("put", r"/_referrers/", when="before"),
        # The referrer entry stored, the index not yet refolded.
        CrashPoint("put", r"/_referrers/", when="after"),
        # Half way through the index refold (the digest object written, listings not).
        CrashPoint("put", r"/_index/labels/status/", occurrence=2, when="before"),
    ],
    ids=["before-referrer", "after-referrer", "mid-index"],
)
def test_a_label_change_killed_half_way_is_not_half_done_after_a_retry(
    tmp_path: Path, point: CrashPoint
) -> None:
    storage = tmp_path / "data"
    # The crash point matches no call of the run's own push (no subject; its one
    # status label is the first `_index/labels/status/` write, so that point says 2nd).
    server = CrashingServer(storage, point)
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        manifest = push_image(client, "ci/runs", b"run one")
        data = json.loads(manifest)
        data["annotations"] = {"dev.arca.label.status": "fail"}
        manifest = json.dumps(data).encode()
        response = client.put(
            "/v2/ci/runs/manifests/run-1", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status_code == 201, response.text
    digest = sha256(manifest)

    dies("POST", f"{server.url}{LABELS}", json={"set": {"status": "pass"}})
    server.wait_killed()
    server.restart()
    try:
        seen = _labels_seen(server.url)
        if point.when == "before" and "_referrers" in point.path:
            # Nothing was acknowledged and nothing shows.
            assert seen == {"record": "fail", "pass": [], "fail": [digest]}
        # The client had no answer: it labels again, and every view agrees.
        response = post(f"{server.url}{LABELS}", json={"set": {"status": "pass"}})
        assert response.status_code == 201, response.text
        assert response.json()["digest"] == digest
        assert _labels_seen(server.url) == {"record": "pass", "pass": [digest], "fail": []}
    finally:
        server.stop()
    if point.path != r"/_index/labels/status/":
        return
    # A rebuild from storage gives the same labels as the retried change did.
    _rebuild(storage)
    again = ArcaServer(storage).start()
    try:
        assert _labels_seen(again.url) == {"record": "pass", "pass": [digest], "fail": []}
    finally:
        again.stop()


def _usage(storage: Path, config: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "arca", "quota", "--storage", str(storage), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, **config},
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["items"]
    return sum(row["bytes"] for row in rows if row["repository"] == "q/app")


@pytest.mark.parametrize(
    "point",
    [
        CrashPoint("put", r"^uploads/[0-9a-f]+/state$", occurrence=2, when="before"),
        CrashPoint("put", r"/_layers/.*/link$", when="before"),
    ],
    ids=["mid-chunks", "before-link"],
)
def test_a_quota_checked_upload_killed_half_way_counts_only_what_was_linked(
    tmp_path: Path, point: CrashPoint
) -> None:
    config = _config(tmp_path)
    storage = tmp_path / "data"
    server = CrashingServer(storage, point, env=config)
    server.start()
    blob = b"x" * 60_000
    location = post(f"{server.url}/v2/q/app/blobs/uploads/").headers["Location"]
    try:
        first: httpx.Response | None = patch(
            f"{server.url}{location}", content=blob[:30_000], headers={"Content-Range": "0-29999"}
        )
    except httpx.TransportError:
        first = None  # killed during the chunk
    if first is not None:
        assert first.status_code == 202, first.text
        location = first.headers["Location"]
        closing = location + ("&" if "?" in location else "?") + f"digest={sha256(blob)}"
        dies(
            "PUT",
            f"{server.url}{closing}",
            content=blob[30_000:],
            headers={"Content-Range": "30000-59999"},
        )
    server.wait_killed()
    server.restart()
    try:
        linked = httpx.head(f"{server.url}/v2/q/app/blobs/{sha256(blob)}").status_code == 200
        assert _usage(storage, config) == (len(blob) if linked else 0)
        # Over the quota with it or not, a 50 kB blob more is refused, never stored.
        other = b"y" * 50_000
        answer = post(f"{server.url}/v2/q/app/blobs/uploads/?digest={sha256(other)}", content=other)
        assert answer.status_code == (403 if linked else 201), answer.text
    finally:
        server.stop()
