"""The processes `arca serve` becomes: one server, or a supervisor and its workers.

`arca serve` checks the configuration with the whole command-line interface loaded
(typer, rich, pydantic, every command), then replaces itself (`exec`, same pid) with
`python -m arca.processes`, which imports only what it runs:

- `server` (one worker): uvicorn and the application, in this process;
- `supervise N`: a small supervisor, importing neither uvicorn nor the application,
  binds one listening socket per worker on the port and starts N `worker` processes; it
  starts a worker again if one dies, and on SIGTERM or SIGINT stops them all (each
  finishes its requests, as uvicorn does) and exits.

The command-line interface would otherwise stay in the memory of the one server, or of
uvicorn's supervisor with several workers (which runs in the `arca serve` process, plus
multiprocessing's resource tracker): about 10 MB of a 75 MB server, and 65 MB beside the
workers (docs/benchmarks.md, "Workers").

Workers die with their supervisor (Linux's parent-death signal), so a supervisor killed
by SIGKILL or the OOM killer leaves no worker serving the port on its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

log = logging.getLogger("arca.serve")

_METRICS = "PROMETHEUS_MULTIPROC_DIR"
_RESTART_PAUSE = 1.0
"""Seconds between restarts of a worker that keeps dying (a broken config, a full disk)."""


def command(mode: str, *args: str) -> list[str]:
    """The command line of this module in `mode`, with this interpreter and its flags."""
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-m", "arca.processes", mode, *args]


def become(workers: int, server: dict[str, Any]) -> None:
    """Replace `arca serve` by the server (one worker) or the supervisor (several).
    `server`: host, port, log_level, log_format, access_log, tls (for the supervisor's
    own lines and socket; workers read their settings from the environment)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if workers == 1:
        argv = command("server")
    else:
        argv = command("supervise", str(workers), json.dumps(server))
    os.execv(argv[0], argv)


# -- a server: uvicorn and the application ----------------------------------------------


def serve(sockets: list[socket.socket] | None = None) -> None:
    """Run uvicorn with arca's application, on `sockets` or binding host:port itself."""
    import uvicorn

    from arca.config import load_settings
    from arca.log import logging_config
    from arca.serving import guarded_protocol

    settings = load_settings(os.environ)  # as `arca serve` left it: ARCA_CONFIG, ARCA_*
    server = settings.server
    config = uvicorn.Config(
        "arca.app:create_app_from_environment",
        factory=True,
        host=server.host,
        port=server.port,
        log_config=logging_config(server.log_level, server.log_format, server.access_log),
        log_level=server.log_level,
        # httptools with the header and body timeouts uvicorn lacks (arca/serving.py).
        http=guarded_protocol(  # type: ignore[arg-type]
            settings.limits.header_timeout_seconds,
            settings.limits.body_timeout_seconds,
            settings.limits.body_min_bytes_per_second,
            server.sendfile,
        ),
        loop="uvloop",
        access_log=False,  # arca.access (api/observe.py) logs each request instead
        server_header=False,
        timeout_keep_alive=30,
        ssl_certfile=server.tls_cert or None,
        ssl_keyfile=server.tls_key or None,
    )
    runner = uvicorn.Server(config)
    runner.run(sockets=sockets)
    if not runner.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as `uvicorn.run` exits


def work(fd: int, supervisor: int) -> None:
    """A worker: the server on the supervisor's socket, dying with the supervisor."""
    _die_with_parent(supervisor)
    serve([socket.socket(fileno=fd)])


def _die_with_parent(supervisor: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor:  # it died before the signal was armed
        sys.exit(1)


# -- the supervisor ----------------------------------------------------------------------


class Supervisor:
    """Starts one worker per socket and keeps one running on each.

    Each worker has a listening socket of its own on the same port (SO_REUSEPORT):
    the kernel spreads new connections over the sockets. With one shared socket, the
    first worker to wake accepts every connection waiting (asyncio accepts in a loop),
    so 8 clients connecting at once mostly landed on one worker and a second worker
    added nothing (docs/benchmarks.md, "Tag PUTs"). A socket outlives its worker:
    connections that arrive while a worker is restarted wait in its queue.
    """

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        """The worker serving each socket, by the socket's position."""
        self.stopping = False

    def start(self, slot: int) -> subprocess.Popen[bytes]:
        fd = self.sockets[slot].fileno()
        argv = command("worker", str(fd), str(os.getpid()))
        child = subprocess.Popen(argv, pass_fds=[fd])
        self.children[slot] = child
        return child

    def run(self) -> None:
        for slot in range(len(self.sockets)):
            self.start(slot)
        while not self.stopping:
            time.sleep(0.2)
            for slot, child in list(self.children.items()):
                code = child.poll()
                if code is None or self.stopping:
                    continue
                _forget_live_gauges(child.pid)
                log.warning(
                    "worker exited; starting another",
                    extra={"pid": child.pid, "returncode": code},
                )
                time.sleep(_RESTART_PAUSE)
                if not self.stopping:
                    self.start(slot)
        self.stop_children()

    def stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def stop_children(self) -> None:
        """SIGTERM to every worker (a graceful stop in uvicorn), then wait for each."""
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in self.children.values():
            child.wait()


def _forget_live_gauges(pid: int) -> None:
    """A worker that died without saying so (killed): its live-summed gauges (uploads in
    flight) leave the sum. prometheus-client is imported only then: the supervisor stays
    small."""
    if os.environ.get(_METRICS):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def listen(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """`count` listening sockets on one port (SO_REUSEPORT; port 0: the first one's),
    bound as uvicorn's supervisor binds its one (`Config.bind_socket`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # First a plain bind: with SO_REUSEPORT alone, a second `arca serve` on a port in
    # use would join the first one's sockets and share its connections.
    with socket.socket(family=family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family=family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def supervise(workers: int, server: dict[str, Any]) -> None:
    from arca.log import configure

    configure(server["log_level"], server["log_format"], server["access_log"])
    host, port = server["host"], server["port"]
    try:
        sockets = listen(host, port, workers)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(3)
    scheme = "https" if server["tls"] else "http"
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "listening on %s://%s:%d with %d workers",
        scheme,
        shown,
        sockets[0].getsockname()[1],
        workers,
        extra={"pid": os.getpid(), "workers": workers},
    )
    supervisor = Supervisor(sockets)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    created = None
    if not os.environ.get(_METRICS):
        # prometheus-client's multiprocess mode: each worker keeps its figures in files
        # there and any worker's /metrics answers the sum (arca/metrics.py).
        created = tempfile.mkdtemp(prefix="arca-metrics-")
        os.environ[_METRICS] = created
    try:
        supervisor.run()
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    log.info("stopped", extra={"pid": os.getpid()})


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "server":
        serve()
    elif mode == "worker":
        work(int(args[0]), int(args[1]))
    elif mode == "supervise":
        supervise(int(args[0]), json.loads(args[1]))
    else:
        raise SystemExit(f"arca.processes: unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
