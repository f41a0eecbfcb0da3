"""A collector that SIGKILLs itself at a chosen step: `python -m tests.lifecycle.crash_gc
ROOT STEP` (STEP: mark, tombstone, verdict, trash-item, sweep, trash)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from tests.lifecycle.test_crash import crash_settings


async def main(root: str, step: str) -> None:
    from arca.lifecycle.gc import Collector
    from arca.registry.registry import Registry
    from arca.storage.drivers.filesystem import FilesystemDriver

    registry = Registry(FilesystemDriver(root), crash_settings())
    seen = 0

    async def kill_at(reached: str) -> None:
        nonlocal seen
        if reached == step:
            seen += 1
            if seen == 2 or step not in ("verdict", "trash-item"):
                os.kill(os.getpid(), signal.SIGKILL)  # mid-sweep: one item done, the next not

    await Collector(registry, registry.settings, hook=kill_at).run()
    sys.exit("the collector finished without reaching " + step)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
