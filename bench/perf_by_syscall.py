"""Share of a `perf record -g` profile by system call, and samples per thread.

Usage:
    perf record -e cpu-clock -F 999 -g -p <server pid> -o perf.data -- sleep 8
    perf script -i perf.data -F tid,ip,sym > perf.txt
    .venv/bin/python bench/perf_by_syscall.py perf.txt

A sample counts for the first `__x64_sys_*` / `__do_sys_*` frame on its stack, else for
"kernel, no system call" (interrupts, page faults) when its top frame is in the kernel,
else for "user". In a VM without hardware counters this is the quickest way to see
whether a server's CPU goes to its own code or to hand-offs (futex) and flushes
(docs/benchmarks.md, "Tag PUTs", fourth round).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

SYSCALL = re.compile(r"__(?:x64|do)_sys_(\w+)")


def summarise(text: str) -> tuple[Counter[str], Counter[str]]:
    by_kind: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    for sample in text.split("\n\n"):
        lines = sample.strip().split("\n")
        if not lines[0].strip():
            continue
        kind = "user"
        for line in lines[1:]:
            if match := SYSCALL.search(line):
                kind = match.group(1)
                break
        else:
            if len(lines) > 1 and lines[1].strip().startswith("ffffffff"):
                kind = "kernel, no system call"
        by_kind[kind] += 1
        by_thread[lines[0].split()[0]] += 1
    return by_kind, by_thread


def main() -> None:
    by_kind, by_thread = summarise(Path(sys.argv[1]).read_text())
    total = sum(by_kind.values())
    for kind, count in by_kind.most_common(20):
        print(f"{100 * count / total:5.1f} %  {kind}")
    print("samples by thread id:", ", ".join(f"{t}: {n}" for t, n in by_thread.most_common(16)))


if __name__ == "__main__":
    main()
