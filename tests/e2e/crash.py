"""The crash harness: a real arca server that SIGKILLs itself at a chosen storage call.

A test names the moment to die as a `CrashPoint` (a driver method, a regular
expression searched in the path, which matching call, before or after it runs) and
starts a `CrashingServer` on a storage root. The server is arca's own app
(`create_app`) under uvicorn, exactly as `arca serve` builds it, except that its
driver goes through `_Killing`, which sends SIGKILL to its own process at that call:
no `finally`, no flush, no shutdown hook runs, as with kill -9 or a power cut of the
process. Then `restart()` starts a plain `arca serve` on the same storage, and the
test checks what a client sees.

```python
server = CrashingServer(tmp_path / "data", CrashPoint("put", r"/_layers/.*/link$")).start()
with pytest.raises(httpx.TransportError):
    httpx.put(f"{server.url}{location}?digest={digest}")
server.wait_killed()
server.restart()  # plain arca, same storage, new port
```

Crash points name driver calls, so they stay valid as long as the registry's order
of storage calls does; the ones the tests use are listed in docs/development.md.
Run as a module, this file is the server process itself (see `_main`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from arca.storage.driver import Driver, FileWriter, ObjectInfo
from tests.doubles import WrappingDriver
from tests.e2e.server import ArcaServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CrashPoint:
    """Die at the `occurrence`-th call of `method` whose path matches `path`."""

    method: str
    """A Driver method: get, put, delete, delete_if, move, stat, list, writer."""
    path: str
    """A regular expression, searched in the storage path."""
    occurrence: int = 1
    when: Literal["before", "after"] = "before"


class CrashingServer(ArcaServer):
    """An arca process that kills itself at `point`; `restart()` brings up plain arca."""

    def __init__(self, storage: Path, point: CrashPoint, env: dict[str, str] | None = None):
        super().__init__(storage, env)
        self.point = point
        self.crashed = False

    def command(self) -> list[str]:
        if self.crashed:
            return super().command()
        return [
            sys.executable,
            "-m",
            "tests.e2e.crash",
            "--port",
            str(self.port),
            "--storage",
            str(self.storage),
            "--point",
            json.dumps(dataclasses.asdict(self.point)),
        ]

    @property
    def cwd(self) -> Path:
        return ROOT  # so that `-m tests.e2e.crash` imports

    def wait_killed(self, timeout: float = 30) -> None:
        """Wait for the process to die of SIGKILL (fails if it lives or exits otherwise)."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"arca was not killed at {self.point}") from None
        assert code == -signal.SIGKILL, f"arca exited with {code}: {self.log.read_text()}"
        self.process = None
        self.crashed = True

    def restart(self) -> None:
        """Plain `arca serve` on the same storage (after `wait_killed`)."""
        self.stop()
        self.crashed = True
        self.start()


class _Killing(WrappingDriver):
    def __init__(self, inner: Driver, point: CrashPoint) -> None:
        super().__init__(inner)
        self._point = point
        self._pattern = re.compile(point.path)
        self._seen_count = 0

    def _matches(self, method: str, path: str) -> bool:
        if method != self._point.method or not self._pattern.search(path):
            return False
        self._seen_count += 1
        return self._seen_count == self._point.occurrence

    def _seen(self, method: str, path: str) -> None:
        if self._point.when == "before" and self._matches(method, path):
            _die()

    def _done(self, method: str, path: str) -> None:
        if self._point.when == "after" and self._matches(method, path):
            _die()

    # The calls that change storage also stop right after they ran, for `when="after"`.
    async def put(self, path: str, data: bytes, *, if_absent: bool = False) -> None:
        await super().put(path, data, if_absent=if_absent)
        self._done("put", path)

    async def put_unsynced(self, path: str, data: bytes) -> None:
        await super().put_unsynced(path, data)
        self._done("put", path)

    async def delete(self, path: str) -> None:
        await super().delete(path)
        self._done("delete", path)

    async def delete_if(self, path: str, expected: bytes) -> bool:
        deleted = await super().delete_if(path, expected)
        self._done("delete_if", path)
        return deleted

    async def move(self, source: str, destination: str) -> None:
        await super().move(source, destination)
        self._done("move", source)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        writer = await super().writer(path, append)
        self._done("writer", path)
        return writer

    async def stat(self, path: str) -> ObjectInfo:
        info = await super().stat(path)
        self._done("stat", path)
        return info


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # not reached: SIGKILL cannot be handled


def _main() -> None:
    import uvicorn

    from arca.app import create_app
    from arca.config import load_settings
    from arca.storage.drivers import load_driver

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--point", required=True)
    args = parser.parse_args()
    environ = {**os.environ}
    if "ARCA_STORAGE_DRIVER" not in environ:
        environ["ARCA_STORAGE_DRIVER"] = '"filesystem"'
        environ["ARCA_STORAGE_FILESYSTEM_ROOT"] = json.dumps(args.storage)
    settings = load_settings(environ)
    driver = load_driver(settings.storage.driver, settings.storage.driver_options())
    point = CrashPoint(**json.loads(args.point))
    app = create_app(settings, _Killing(driver, point))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    _main()
