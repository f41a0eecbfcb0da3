"""`arca serve`'s processes (arca/processes.py): what each carries, and what happens
when one of them dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.server import ArcaServer

TWO_WORKERS = {"ARCA_SERVER_WORKERS": "2"}


def libraries(process: psutil.Process) -> str:
    """The shared objects mapped into a process (its /proc maps)."""
    return Path(f"/proc/{process.pid}/maps").read_text()


def workers_of(supervisor: psutil.Process, count: int) -> list[psutil.Process]:
    """The supervisor's workers once `count` of them answer to the pid (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        children = [c for c in supervisor.children() if c.status() != psutil.STATUS_ZOMBIE]
        if len(children) == count:
            return children
        if time.monotonic() > deadline:
            pytest.fail(f"{len(children)} workers, not {count}")
        time.sleep(0.1)


def gone(processes: list[psutil.Process]) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=30)
    return not alive


def test_one_worker_serves_in_the_serve_process_without_the_cli(tmp_path: Path) -> None:
    server = ArcaServer(tmp_path / "data").start()
    try:
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        assert process.children() == []  # the pid a service manager knows serves
        assert httpx.get(f"{server.url}/v2/", timeout=30).status_code == 200
        maps = libraries(process)
        assert "uvloop" in maps
        # typer's pydantic: loaded by the CLI that checked the config, and left behind.
        assert "pydantic_core" not in maps
        # PyJWT's cryptography: auth is off, so no worker needs it.
        assert "cryptography" not in maps
    finally:
        server.stop()


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    server = ArcaServer(tmp_path / "data", TWO_WORKERS).start()
    try:
        assert server.process is not None
        supervisor = psutil.Process(server.process.pid)
        first, second = workers_of(supervisor, 2)
        # The supervisor carries neither the server nor the CLI; the workers do the serving.
        assert "uvloop" not in libraries(supervisor)
        assert "pydantic_core" not in libraries(supervisor)
        assert "uvloop" in libraries(first)

        first.kill()
        replaced = {w.pid for w in workers_of(supervisor, 2)}
        deadline = time.monotonic() + 30
        while replaced == {first.pid, second.pid} and time.monotonic() < deadline:
            time.sleep(0.1)
            replaced = {w.pid for w in workers_of(supervisor, 2)}
        assert first.pid not in replaced
        assert second.pid in replaced
        for _ in range(8):  # fresh connections, whichever worker accepts them
            response = httpx.get(f"{server.url}/v2/", headers={"Connection": "close"}, timeout=30)
            assert response.status_code == 200

        workers = workers_of(supervisor, 2)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
        assert gone(workers)
        assert "worker exited; starting another" in server.log.read_text()
    finally:
        server.stop()


def test_workers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    server = ArcaServer(tmp_path / "data", TWO_WORKERS).start()
    try:
        assert server.process is not None
        workers = workers_of(psutil.Process(server.process.pid), 2)
        server.kill()  # SIGKILL: the supervisor cannot stop them itself
        assert gone(workers), "workers outlived their supervisor"
        with pytest.raises(httpx.ConnectError):  # nobody serves the port any more
            httpx.get(f"{server.url}/v2/", timeout=5)
    finally:
        server.stop()


def test_connections_at_once_are_spread_over_the_workers_and_the_port_stays_theirs(
    tmp_path: Path,
) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT): 32 clients connecting
    at the same moment are not all accepted by whichever worker woke first, so a second
    worker serves some of them (the kernel spreads them by a hash of the addresses;
    fewer than 6 on one worker has odds of about 1 in 10,000)."""
    server = ArcaServer(tmp_path / "data", TWO_WORKERS).start()
    clients: list[socket.socket] = []
    try:
        assert server.process is not None
        workers = workers_of(psutil.Process(server.process.pid), 2)
        for worker in workers:  # both listening before the burst
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(
                c.status == psutil.CONN_LISTEN for c in worker.net_connections("tcp")
            ):
                time.sleep(0.1)
        port = int(server.url.rsplit(":", 1)[1])
        clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
        ours = {client.getsockname()[1] for client in clients}
        deadline = time.monotonic() + 30
        while True:
            held = [
                sum(1 for c in w.net_connections("tcp") if c.raddr and c.raddr[1] in ours)
                for w in workers
            ]
            if sum(held) == len(clients) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert sum(held) == len(clients), f"accepted {held} of {len(clients)}"
        assert min(held) >= 6, f"connections per worker: {held}"
        for client in clients:  # and every one of them is served
            client.sendall(b"GET /v2/ HTTP/1.1\r\nHost: arca\r\nConnection: close\r\n\r\n")
            assert client.recv(64).startswith(b"HTTP/1.1 200")

        # The sockets share the port among themselves only: a second server fails.
        second = ArcaServer(tmp_path / "other", TWO_WORKERS)
        second.port, second.url = server.port, server.url
        run = subprocess.run(
            second.command(), env={**os.environ, **second.env}, capture_output=True, timeout=120
        )
        assert run.returncode == 3
        assert b"cannot listen" in run.stdout + run.stderr
    finally:
        for client in clients:
            client.close()
        server.stop()
