"""What the event log costs and how fast it reads, in one run.

Usage: .venv/bin/python bench/events_bench.py [--quick]

Starts arca (filesystem storage in a temp dir, default durability: every write
fsynced) and prints one table:

- manifest PUT throughput (8 keep-alive connections, each PUT a new manifest with a
  tag, blobs pushed beforehand), with the event log on (default) and off
  (`ARCA_EVENTS_ENABLED=false`), alternating runs, best of each;
- reading 100,000 events through `GET /api/v1/events?n=1000` (one event per
  commit, the worst case for reading), written beforehand straight into storage;
  then the same after compacting them into daily segments;
- stream lag: time from a manifest PUT's 201 to its `manifest.pushed` on
  `GET /api/v1/events/stream`, on the replica that took the push and on another
  replica of the same storage (which finds it by polling, every 0.5 s by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from registry_bench import OCI_MANIFEST, Connection, sha256
from servers import arca_server

CONNECTIONS = 8


def _manifest(config: str, layer: str, n: int) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 5}],
        "annotations": {"n": str(n)},
    }
    return json.dumps(document).encode()


def _prepare(url: str, name: str) -> tuple[str, str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        for blob in (b"{}", b"layer"):
            response = client.post(f"/v2/{name}/blobs/uploads/?digest={sha256(blob)}", content=blob)
            assert response.status_code == 201, response.text
    return sha256(b"{}"), sha256(b"layer")


def manifest_puts(url: str, seconds: float, offset: int) -> float:
    """Manifest PUTs per second, each a new manifest under a new tag."""
    config, layer = _prepare(url, "bench/app")
    counter = [offset]

    async def run() -> int:
        done = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            async with Connection(url) as connection:
                while time.monotonic() < deadline:
                    counter[0] += 1
                    n = counter[0]
                    status, _, _ = await connection.request(
                        "PUT",
                        f"/v2/bench/app/manifests/t{n}",
                        _manifest(config, layer, n),
                        content_type=OCI_MANIFEST,
                    )
                    assert status == 201, status
                    done += 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        return done

    started = time.monotonic()
    done = asyncio.run(run())
    return done / (time.monotonic() - started)


def fill_log(root: Path, count: int) -> None:
    """`count` events, one per commit, written as a server would (fsync off: setup)."""
    from arca.events.log import EventLog, full_type
    from arca.storage.drivers.filesystem import FilesystemDriver

    async def run() -> None:
        driver = FilesystemDriver(str(root), fsync=False)
        log = EventLog(driver)
        for n in range(count):
            await log.append(
                [
                    {
                        "specversion": "1.0",
                        "id": "",
                        "source": "/arca",
                        "type": full_type("manifest.pushed"),
                        "time": "2026-12-01T12:00:00.000000Z",
                        "subject": f"bench/app@sha256:{n:064x}",
                        "datacontenttype": "application/json",
                        "data": {
                            "repository": "bench/app",
                            "digest": f"sha256:{n:064x}",
                            "mediaType": OCI_MANIFEST,
                            "size": 400,
                            "tags": [f"t{n}"],
                            "artifactType": None,
                            "subject": None,
                            "labels": {},
                            "actor": None,
                        },
                    }
                ]
            )

    asyncio.run(run())


def compact(root: Path) -> None:
    """Compact the whole log (but its newest commit) as if it were two days old."""
    from arca.events.log import EventLog
    from arca.storage.drivers.filesystem import FilesystemDriver

    later = time.time() + 2 * 86400
    log = EventLog(FilesystemDriver(str(root), fsync=False), clock=lambda: later)
    asyncio.run(log.maintain(compact_after=86400, retention=0))


def read_all(url: str) -> tuple[int, float]:
    started = time.monotonic()
    count, after = 0, ""
    with httpx.Client(base_url=url, timeout=120) as client:
        while True:
            page = client.get("/api/v1/events", params={"n": 1000, "after": after}).json()
            count += len(page["events"])
            after = page["cursor"] or after
            if not page["more"]:
                break
    return count, time.monotonic() - started


def stream_lag(push_url: str, stream_url: str, pushes: int) -> list[float]:
    """Seconds from each PUT's answer to its event on `stream_url`'s stream."""
    config, layer = _prepare(push_url, "lag/app")
    acknowledged: dict[str, float] = {}
    arrived: dict[str, float] = {}
    with httpx.Client(base_url=stream_url, timeout=None) as client:
        last = ""
        while True:  # the newest id, so the stream starts at the end
            page = client.get("/api/v1/events", params={"n": 1000, "after": last}).json()
            last = page["cursor"] or last
            if not page["more"]:
                break
    ready = threading.Event()

    def listen() -> None:
        headers = {"Last-Event-ID": last} if last else {}
        with httpx.stream(
            "GET",
            f"{stream_url}/api/v1/events/stream",
            params={"type": "manifest.pushed"},
            headers=headers,
            timeout=None,
        ) as reply:
            ready.set()
            for line in reply.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    arrived[event["data"]["digest"]] = time.monotonic()
                    if len(arrived) == pushes:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(30)
    time.sleep(0.5)
    with httpx.Client(base_url=push_url, timeout=30) as client:
        for n in range(pushes):
            data = _manifest(config, layer, 10_000_000 + n + int(time.time() * 1000))
            response = client.put(
                f"/v2/lag/app/manifests/{sha256(data)}",
                content=data,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert response.status_code == 201, response.text
            acknowledged[sha256(data)] = time.monotonic()
            time.sleep(0.05)
    listener.join(60)
    return [arrived[digest] - moment for digest, moment in acknowledged.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs, 20,000 events")
    args = parser.parse_args()
    seconds, rounds = (4.0, 2) if args.quick else (8.0, 3)
    events = 20_000 if args.quick else 100_000
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="arca-events-bench-") as tmp:
        workdir = Path(tmp)
        on = arca_server(workdir, "arca-events-on")
        off = arca_server(workdir, "arca-events-off", {"ARCA_EVENTS_ENABLED": "false"})
        results: dict[str, list[float]] = {"on": [], "off": []}
        for server in (on, off):
            server.start()
        try:
            for round_ in range(rounds):
                for key, server in (("off", off), ("on", on)):
                    results[key].append(manifest_puts(server.url, seconds, round_ * 10**6))
        finally:
            on.stop()
            off.stop()
        best_on, best_off = max(results["on"]), max(results["off"])
        rows.append(("manifest PUT, event log off (req/s)", f"{best_off:.0f}"))
        rows.append(("manifest PUT, event log on (req/s)", f"{best_on:.0f}"))
        rows.append(("cost of the event log", f"{(1 - best_on / best_off) * 100:+.1f} %"))
        rows.append(
            ("  all runs off / on", f"{[round(x) for x in results['off']]} / "
             f"{[round(x) for x in results['on']]}")
        )  # fmt: skip

        reader = arca_server(workdir, "arca-read")
        assert reader.storage is not None
        fill_log(reader.storage, events)
        for how in ("one per commit", "compacted"):
            if how == "compacted":
                compact(reader.storage)
            reader.start()
            try:
                count, elapsed = read_all(reader.url)
            finally:
                reader.stop()
            assert count == events, count
            rows.append((f"read {events:,} events, n=1000, {how} (s)", f"{elapsed:.2f}"))
            rows.append(("  events per second", f"{count / elapsed:,.0f}"))

        first = arca_server(workdir, "arca-lag")
        second = arca_server(workdir, "arca-lag-2", storage=first.storage)  # a replica
        first.start()
        second.start()
        try:
            same = stream_lag(first.url, first.url, 40 if args.quick else 100)
            other = stream_lag(first.url, second.url, 20 if args.quick else 40)
        finally:
            first.stop()
            second.stop()
        for label, lags in (("same replica", same), ("other replica", other)):
            lags.sort()
            p95 = lags[int(len(lags) * 0.95) - 1]
            rows.append(
                (f"stream lag, {label} (ms, median / p95)",
                 f"{statistics.median(lags) * 1000:.1f} / {p95 * 1000:.1f}")
            )  # fmt: skip
    width = max(len(label) for label, _ in rows)
    print(f"| {'figure':<{width}} | value |")
    print(f"| {'-' * width} | ---: |")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
