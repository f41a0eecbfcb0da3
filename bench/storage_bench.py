"""Push and pull throughput of arca on its filesystem, S3, GCS and Azure drivers.

Usage: .venv/bin/python bench/storage_bench.py [--quick] [--drivers filesystem,s3,gcs,azure]

Starts the emulators on loopback (moto for S3, gcp-storage-emulator for GCS, Azurite
from `.cache/azurite` for Azure: `make azurite` installs it), then arca once per
driver on a fresh bucket or container, and runs the same workload against each: one
large blob pushed and pulled, and many 4 MiB blobs by 8 concurrent clients. The
emulators are not the clouds: moto and gcp-storage-emulator are pure Python (the
latter started as the tests start it, tests/gcs_emulator.py), Azurite is node.js
on local disk; so the cloud columns measure arca's driver plus its emulator, and
against the real services the backend is faster and the network slower.
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
from registry_bench import big_blob, many_blobs
from servers import Server, arca_server, free_port, wait_for_port


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


ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def start_gcs(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    port = free_port()
    # The emulator minus two costs that grow with what it holds (tests/gcs_emulator.py).
    emulator = Path(__file__).resolve().parents[1] / "tests" / "gcs_emulator.py"
    log = open(workdir / "gcs.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [
            sys.executable,
            str(emulator),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=log,
        stderr=log,
    )
    wait_for_port(port)
    endpoint = f"http://127.0.0.1:{port}"
    httpx.post(
        f"{endpoint}/storage/v1/b", params={"project": "bench"}, json={"name": "arca-bench"}
    ).raise_for_status()
    env = {
        "ARCA_STORAGE_DRIVER": "gcs",
        "ARCA_STORAGE_GCS_BUCKET": "arca-bench",
        "ARCA_STORAGE_GCS_ENDPOINT_URL": endpoint,
        "ARCA_STORAGE_GCS_ANONYMOUS": "true",
    }
    return process, env


def start_azurite(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    from azure.storage.blob import BlobServiceClient

    if not AZURITE.exists():
        raise SystemExit(f"{AZURITE} is missing: run `make azurite`")
    port = free_port()
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(workdir / "azurite"), "--skipApiVersionCheck",
         "--disableTelemetry", "--silent"],
        stdout=log, stderr=log,
    )  # fmt: skip
    wait_for_port(port)
    connection_string = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    with BlobServiceClient.from_connection_string(connection_string) as service:
        service.create_container("arca-bench")
    env = {
        "ARCA_STORAGE_DRIVER": "azure",
        "ARCA_STORAGE_AZURE_CONTAINER": "arca-bench",
        "ARCA_STORAGE_AZURE_CONNECTION_STRING": connection_string,
    }
    return process, env


def run(server: Server, quick: bool) -> dict[str, float]:
    size = 64 if quick else 256
    figures = big_blob(server.url, size, clients=1)
    figures.pop(f"pull 1 x {size} MiB at once (MB/s)", None)  # the one-stream pull again
    count = 8 if quick else 32
    figures.update(many_blobs(server.url, count, 4, 8))
    return figures


def print_table(results: dict[str, dict[str, float]], reference: str) -> None:
    """One column per driver, then each other driver's figure over the reference's."""
    labels = list(results)
    rows = list(next(iter(results.values())))
    compared = [label for label in labels if label != reference] if reference in labels else []
    width = max(len(row) for row in rows)
    header = f"{'figure':<{width}}" + "".join(f"  {label:>12}" for label in labels)
    header += "".join(f"  {label + '/ref':>16}" for label in compared)
    print(header)
    print("-" * len(header))
    for row in rows:
        line = f"{row:<{width}}" + "".join(f"  {results[label][row]:>12.1f}" for label in labels)
        for label in compared:
            line += f"  {results[label][row] / results[reference][row]:>16.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--drivers", default="filesystem,s3,gcs,azure")
    args = parser.parse_args()
    drivers = [name.strip() for name in args.drivers.split(",") if name.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="arca-storage-bench-"))
    moto, endpoint = start_moto(workdir)
    emulators = [moto]
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
        envs: dict[str, dict[str, str] | None] = {"filesystem": None, "s3": s3_env}
        if "gcs" in drivers:
            process, envs["gcs"] = start_gcs(workdir)
            emulators.append(process)
        if "azure" in drivers:
            process, envs["azure"] = start_azurite(workdir)
            emulators.append(process)
        results = {}
        for server in (arca_server(workdir, name, envs[name]) for name in drivers):
            server.start()
            try:
                print(f"running {server.label} ...", file=sys.stderr, flush=True)
                results[server.label] = run(server, args.quick)
            finally:
                server.stop()
        print_table(results, reference="filesystem")
    finally:
        for process in emulators:
            process.terminate()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
