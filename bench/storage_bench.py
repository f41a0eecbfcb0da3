"""Push and pull throughput of arca on its filesystem and S3 drivers, side by side.

Usage: .venv/bin/python bench/storage_bench.py [--quick]

Starts a moto S3 server on loopback, then arca twice (filesystem storage in a temp
dir; the S3 driver on a fresh bucket) and runs the same workload against each:
one large blob pushed and pulled, and many 4 MiB blobs by 8 concurrent clients.
moto is a pure-Python S3 emulation, so the S3 column measures arca's S3 path plus
moto; against real S3 or MinIO the backend is faster and the network is slower.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from registry_bench import Figures, MiB, Server, big_blob, free_port, many_blobs, print_table


def start_moto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).with_name("moto_server")
    log = open(workdir / "moto.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    httpx.put(f"{endpoint}/arca-bench", timeout=10).raise_for_status()
    return process, endpoint


def arca(label: str, workdir: Path, env: dict[str, str] | None) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "arca", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if env is None:
        command += ["--storage", str(workdir / f"{label}-data")]
    return Server(label, command, f"http://127.0.0.1:{port}", workdir, env or {})


def run(server: Server, quick: bool) -> Figures:
    figures = Figures()
    size = 64 if quick else 256
    push, pull = big_blob(server.url, size)
    figures.values[f"push {size} MiB blob (MB/s)"] = push * MiB / 1e6
    figures.values[f"pull {size} MiB blob (MB/s)"] = pull * MiB / 1e6
    count = 8 if quick else 32
    push, pull = many_blobs(server.url, count, 4, 8)
    figures.values[f"push {count} x 4 MiB, 8 clients (MB/s)"] = push * MiB / 1e6
    figures.values[f"pull {count} x 4 MiB, 8 clients (MB/s)"] = pull * MiB / 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arca-storage-bench-"))
    moto, endpoint = start_moto(workdir)
    try:
        s3_env = {
            "ARCA_STORAGE_DRIVER": "s3",
            "ARCA_STORAGE_S3_BUCKET": "arca-bench",
            "ARCA_STORAGE_S3_ENDPOINT_URL": endpoint,
            "ARCA_STORAGE_S3_REGION": "us-east-1",
            "ARCA_STORAGE_S3_ACCESS_KEY_ID": "bench",
            "ARCA_STORAGE_S3_SECRET_ACCESS_KEY": "bench",
            "ARCA_STORAGE_S3_ADDRESSING_STYLE": "path",
        }
        results = {}
        for server in (arca("filesystem", workdir, None), arca("s3", workdir, s3_env)):
            server.start()
            try:
                print(f"running {server.label} ...", file=sys.stderr, flush=True)
                results[server.label] = run(server, args.quick)
            finally:
                server.stop()
        print_table(results, reference="filesystem")
    finally:
        moto.terminate()
        moto.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
