"""An applier that SIGKILLs itself at a chosen step: `python -m
tests.lifecycle.crash_retention ROOT STEP [OCCURRENCE]` (STEP: journal, untagged,
trashed; OCCURRENCE: which time the step is reached, default 1)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from tests.lifecycle.test_retention_crash import crash_settings


async def main(root: str, step: str, occurrence: int) -> None:
    from tests.lifecycle.retention_helpers import open_registry, retention

    registry, control, _ = open_registry(root, crash_settings())
    seen = 0

    async def kill_at(reached: str) -> None:
        nonlocal seen
        if reached == step:
            seen += 1
            if seen == occurrence:
                os.kill(os.getpid(), signal.SIGKILL)

    await retention(registry, control, hook=kill_at).apply(dry_run=False)
    sys.exit("the apply finished without reaching " + step)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1))
