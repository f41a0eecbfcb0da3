"""Request bodies through arca's uvicorn protocol (arca/serving.py): every byte arrives,
in order, whatever sizes the client sends it in; bodies of pipelined requests stay
apart; the server reads ahead of a slow application, but only so far; a client that
stops mid-body is a disconnect.

A real uvicorn server on 127.0.0.1 (in a thread of the test process) with the
protocol `arca serve` uses, in front of a small app that reports what it received.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from arca import serving
from arca.serving import BODY_BUFFER, guarded_protocol

MiB = 1 << 20


class _Recorder:
    """Answers every request with what it received: the body's size and sha256, and
    the size of each `http.request` message. `?wait=S` sleeps before reading;
    `?ignore=1` answers without reading the body."""

    def __init__(self) -> None:
        self.disconnects = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
        await asyncio.sleep(float(query.get("wait", 0)))
        hasher, sizes = hashlib.sha256(), []
        while not query.get("ignore"):
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            hasher.update(message["body"])
            sizes.append(len(message["body"]))
            if not message.get("more_body", False):
                break
        body = json.dumps({"sha256": hasher.hexdigest(), "size": sum(sizes), "sizes": sizes})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, _Recorder]]:
    app = _Recorder()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=guarded_protocol(10.0, 10.0, 1.0),  # type: ignore[arg-type]
        loop="uvloop",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield port, app
    server.should_exit = True
    thread.join(30)


def _head(size: int, path: str = "/", extra: str = "") -> bytes:
    return f"PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n{extra}\r\n".encode()


def _answers(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    """Read `count` responses off a kept-alive connection."""
    buffered, answers = b"", list[dict[str, Any]]()
    sock.settimeout(60)
    while len(answers) < count:
        head, separator, rest = buffered.partition(b"\r\n\r\n")
        if separator:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                assert head.startswith(b"HTTP/1.1 200"), head
                answers.append(json.loads(rest[:length]))
                buffered = rest[length:]
                continue
        data = sock.recv(65536)
        assert data, "connection closed early"
        buffered += data
    return answers


def test_a_body_sent_in_odd_pieces_arrives_whole_and_in_order(served: tuple[int, _Recorder]):
    port, _ = served
    data = os.urandom(5 * MiB + 333)
    pieces = [1, 7, 4095, 65_537, 1, MiB + 3, 17, 2 * MiB - 1]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(len(data)))
        offset = 0
        for size in pieces:
            sock.sendall(data[offset : offset + size])
            offset += size
            time.sleep(0.01)  # let the server see each piece on its own
        sock.sendall(data[offset:])
        (answer,) = _answers(sock, 1)
    assert answer["size"] == len(data)
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()


def test_pipelined_requests_keep_their_bodies_apart(served: tuple[int, _Recorder]):
    port, _ = served
    bodies = [os.urandom(n) for n in (3 * MiB + 1, 0, 1, 700_001)]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        # Every request at once: the parser sees the next request's body while the
        # application still reads the previous one.
        sock.sendall(b"".join(_head(len(body)) + body for body in bodies))
        answers = _answers(sock, len(bodies))
    assert [a["size"] for a in answers] == [len(body) for body in bodies]
    assert [a["sha256"] for a in answers] == [hashlib.sha256(b).hexdigest() for b in bodies]


def _upload_to_a_slow_app(port: int, data: bytes) -> dict[str, Any]:
    """Send `data` as one body to the app that sleeps before each read (`?wait=1`)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(len(data), "/?wait=1"))
        sender = threading.Thread(target=sock.sendall, args=(data,))
        sender.start()
        (answer,) = _answers(sock, 1)
        sender.join(60)
    return answer


def test_the_server_reads_ahead_of_a_slow_application_but_only_so_far(
    served: tuple[int, _Recorder],
):
    """While the app is busy the body keeps arriving (so reading the network and
    handling a block overlap), up to BODY_BUFFER bytes, not the whole body."""
    port, _ = served
    data = os.urandom(32 * MiB)
    answer = _upload_to_a_slow_app(port, data)
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()
    first = answer["sizes"][0]
    assert first > 2 * MiB, f"only {first} bytes were read ahead while the application slept"
    # Bounded: what was buffered, plus at most one read of the socket past the limit.
    assert max(answer["sizes"]) <= BODY_BUFFER + MiB


def test_past_the_process_wide_budget_a_connection_reads_ahead_only_a_little(
    served: tuple[int, _Recorder], monkeypatch: pytest.MonkeyPatch
):
    """Many slow uploads at once must not hold BODY_BUFFER each."""
    port, _ = served
    monkeypatch.setattr(serving, "BODY_BUFFERS_TOTAL", 0)
    data = os.urandom(16 * MiB)
    answer = _upload_to_a_slow_app(port, data)
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()
    assert max(answer["sizes"]) <= MiB, "read ahead past the budget"


def test_bodies_left_unread_are_not_counted_against_the_budget(served: tuple[int, _Recorder]):
    """Early answers, kept-alive connections and clients that leave mid-body all give
    their buffered bytes back (else the budget would shrink until every connection
    read ahead 64 KiB)."""
    port, app = served
    before = app.disconnects
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(3 * MiB, "/?ignore=1&wait=0.5") + os.urandom(3 * MiB))
        sock.sendall(_head(5) + b"hello")
        answers = _answers(sock, 2)
    assert [answer["size"] for answer in answers] == [0, 5]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(10 * MiB, "/?wait=0.5") + os.urandom(3 * MiB))
    deadline = time.monotonic() + 30
    while app.disconnects == before or serving._Body.buffered:
        assert time.monotonic() < deadline, f"{serving._Body.buffered} bytes still counted"
        time.sleep(0.02)


def test_expect_100_continue_gets_its_interim_response(served: tuple[int, _Recorder]):
    port, _ = served
    data = os.urandom(100_000)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(len(data), extra="Expect: 100-continue\r\n"))
        sock.settimeout(30)
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(data)
        (answer,) = _answers(sock, 1)
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_client_that_stops_mid_body_is_a_disconnect(served: tuple[int, _Recorder]):
    port, app = served
    before = app.disconnects
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(10 * MiB) + os.urandom(3 * MiB))
    deadline = time.monotonic() + 30
    while app.disconnects == before:
        assert time.monotonic() < deadline, "the app never saw the disconnect"
        time.sleep(0.02)
