"""What auth costs per request: manifest GET and blob GET rates with auth off and on.

Usage: .venv/bin/python bench/auth_bench.py [--seconds 5] [--rounds 3]

Starts arca three times over the same kind of storage: auth off; auth on, the client
sending Basic credentials on every request (bcrypt once, then the remembered check);
auth on, the client sending a bearer token from the token endpoint (verified once,
then remembered until it expires). Each workload runs `--rounds` times per server,
the servers taking turns, with 4 keep-alive connections; the median is printed with
each auth column's ratio to auth off. The load generator is registry_bench's minimal
asyncio client, so the client is the cheapest part of the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from registry_bench import (
    OCI_MANIFEST,
    Server,
    arca_server,
    image_manifest,
    push_image_blobs,
    read_body,
    sha256,
)

USER, PASSWORD = "bench", "bench-password"


def auth_config(workdir: Path) -> Path:
    from arca.auth.htpasswd import set_user

    htpasswd = workdir / "htpasswd"
    set_user(htpasswd, USER, PASSWORD)
    config = workdir / "auth.toml"
    config.write_text(
        f'[auth]\nenabled = true\nhtpasswd = "{htpasswd}"\n'
        '[[auth.policies]]\nrepositories = ["bench/**"]\n'
        f'users = ["{USER}"]\nactions = ["pull", "push"]\n'
    )
    return config


class Ready(Server):
    """registry_bench's Server, ready when /healthz answers (/v2/ is 401 with auth on)."""

    def start(self) -> None:
        log = open(self.workdir / f"{self.label}.log", "wb")  # noqa: SIM115
        import subprocess

        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.label} did not start")


async def request_rate(
    url: str, path: str, headers: dict[str, str], connections: int, seconds: float
) -> float:
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {OCI_MANIFEST}\r\n{extra}\r\n"
    ).encode()
    deadline = time.perf_counter() + seconds
    counts = [0] * connections

    async def worker(slot: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"GET {path}: {head[:80]!r}")
            await read_body(reader, head)
            counts[slot] += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(connections)))
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arca-auth-bench-"))
    config = auth_config(workdir)
    servers = {
        "auth off": Ready(**vars(arca_server(workdir, "off"))),
        "auth on": Ready(**vars(arca_server(workdir, "on", {"ARCA_CONFIG": str(config)}))),
    }
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    blob = os.urandom(4096)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for server in servers.values():
            server.start()
        headers_by_mode: dict[str, tuple[Server, dict[str, str]]] = {}
        for label, server in servers.items():
            auth = (USER, PASSWORD) if label == "auth on" else None
            with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
                manifest = image_manifest(*push_image_blobs(client, "bench/app"))
                client.put(
                    "/v2/bench/app/manifests/v1",
                    content=manifest,
                    headers={"Content-Type": OCI_MANIFEST},
                ).raise_for_status()
                digest = sha256(blob)
                client.post(f"/v2/bench/app/blobs/uploads/?digest={digest}", content=blob)
            if label == "auth off":
                headers_by_mode["auth off"] = (server, {})
                continue
            token = httpx.get(
                f"{server.url}/auth/token",
                params={"service": "arca", "scope": "repository:bench/app:pull"},
                auth=(USER, PASSWORD),
            ).json()["token"]
            headers_by_mode["auth on, Basic"] = (server, {"Authorization": basic})
            headers_by_mode["auth on, bearer"] = (server, {"Authorization": f"Bearer {token}"})
        workloads = {
            "manifest GET by tag (req/s)": "/v2/bench/app/manifests/v1",
            "blob GET, 4 KiB (req/s)": f"/v2/bench/app/blobs/{sha256(blob)}",
        }
        for _ in range(arguments.rounds):
            for workload, path in workloads.items():
                for mode, (server, headers) in headers_by_mode.items():
                    rate = asyncio.run(
                        request_rate(server.url, path, headers, 4, arguments.seconds)
                    )
                    results.setdefault(workload, {}).setdefault(mode, []).append(rate)
    finally:
        for server in servers.values():
            server.stop()
    modes = list(headers_by_mode)
    print(
        "| workload | "
        + " | ".join(modes)
        + " | "
        + " | ".join(f"{mode} / off" for mode in modes[1:])
        + " |"
    )
    print("| --- " * (len(modes) * 2) + "|")
    for workload, by_mode in results.items():
        medians = {mode: statistics.median(rates) for mode, rates in by_mode.items()}
        base = medians["auth off"]
        cells = [f"{medians[mode]:.0f}" for mode in modes]
        ratios = [f"{medians[mode] / base:.2f}" for mode in modes[1:]]
        print(f"| {workload} | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
