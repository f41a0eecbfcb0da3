"""Server CPU per tag-creating manifest PUT, split into user and system time.

Usage: .venv/bin/python bench/tag_put_cpu.py [--seconds 8] [--rounds 2] [SRC ...]

Starts `arca serve` (default configuration, 1 worker, fsync on) on a temp dir once per
round for each SRC (a checkout's `src/` directory, put first on PYTHONPATH; default:
this checkout's), drives the *new images* workload of tags_bench (8 clients, one
repository, every PUT a new manifest under a new tag) and reads the server's utime and
stime from /proc. CPU per PUT hardly depends on what else the machine runs, so two
checkouts compare on a busy machine where request rates do not (docs/benchmarks.md,
"Tag PUTs"). SRCs alternate round by round.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from servers import arca_server
from tags_bench import tag_puts

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) seconds of every thread of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def measure(src: Path, seconds: float, workdir: Path) -> tuple[float, float, float]:
    """PUTs per second and user / system milliseconds of server CPU per PUT, on new
    storage in `workdir` (kept until the end: servers.drop_large_files says why)."""
    server = arca_server(Path(tempfile.mkdtemp(dir=workdir)), env={"PYTHONPATH": str(src)})
    server.start()
    try:
        assert server.process is not None
        tag_puts(server.url, 2, False)  # warm: imports, caches, directories
        user0, system0 = cpu_seconds(server.process.pid)
        rate = tag_puts(server.url, seconds, False)
        user1, system1 = cpu_seconds(server.process.pid)
    finally:
        server.stop()
    puts = rate * seconds
    return rate, 1000 * (user1 - user0) / puts, 1000 * (system1 - system0) / puts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="*", type=Path, help="src/ directories to compare")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sources = args.src or [Path(__file__).resolve().parent.parent / "src"]
    print("| src | round | PUT/s | user ms per PUT | system ms per PUT | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="arca-tag-put-cpu-") as workdir:
        for round_ in range(1, args.rounds + 1):
            for src in sources:
                rate, user, system = measure(src.resolve(), args.seconds, Path(workdir))
                load = os.getloadavg()[0]
                print(f"| {src} | {round_} | {rate:.0f} | {user:.2f} | {system:.2f} | {load:.1f} |")


if __name__ == "__main__":
    main()
