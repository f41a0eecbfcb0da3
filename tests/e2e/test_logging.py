"""Logs a person can read: one access line per request in both formats, request ids that
match the response header, and a TLS probe that is one debug line, not a warning."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from arca.log import TLS_PROBE_MESSAGE
from tests.e2e.server import ArcaServer

# The start of a TLS 1.2 ClientHello, as skopeo and crane send to a registry port.
CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00"
TEXT_LINE = re.compile(r"^(\S+Z) (\w+)\s+(\S+) (.*?)(?: · (.*))?$")
FACT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')

Parse = Callable[[str], "dict[str, Any] | None"]


def parse_json(line: str) -> dict[str, Any] | None:
    return json.loads(line) if line.startswith("{") else None


def parse_text(line: str) -> dict[str, Any] | None:
    match = TEXT_LINE.match(line)
    if match is None:
        return None
    time_, level, logger, message, facts = match.groups()
    record: dict[str, Any] = {"time": time_, "level": level.lower(), "logger": logger}
    record["message"] = message
    for key, value in FACT.findall(facts or ""):
        record[key] = json.loads(value) if value.startswith('"') else value
    return record


def records(server: ArcaServer, parse: Parse) -> list[dict[str, Any]]:
    found = (parse(line) for line in server.log.read_text().splitlines())
    return [record for record in found if record is not None]


def access_lines(server: ArcaServer, parse: Parse, request_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in records(server, parse)
        if r["logger"] == "arca.access" and r.get("request_id") == request_id
    ]


def wait_for_line(server: ArcaServer, parse: Parse, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = access_lines(server, parse, request_id)
        if lines:
            time.sleep(0.2)  # a second line, were there one, would be written by now
            lines = access_lines(server, parse, request_id)
            assert len(lines) == 1, lines
            return lines[0]
        time.sleep(0.05)
    raise AssertionError(f"no access line for request {request_id}: {server.log.read_text()}")


@pytest.mark.parametrize(("log_format", "parse"), [("json", parse_json), ("text", parse_text)])
def test_one_access_line_per_request_with_its_facts(
    tmp_path: Path, log_format: str, parse: Parse
) -> None:
    server = ArcaServer(tmp_path / "data", env={"ARCA_SERVER_LOG_FORMAT": log_format}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            mine = f"ci-{uuid.uuid4().hex[:8]}"
            pushed = client.post(
                "/v2/team/app/blobs/uploads/?digest=sha256:" + "0" * 64,
                content=b"abc",
                headers={"X-Request-ID": mine},
            )
            assert pushed.status_code == 400  # the digest does not match: an error, logged too
            assert pushed.headers["X-Request-ID"] == mine  # the client's id is kept
            tags = client.get("/v2/team/app/tags/list")
            generated = tags.headers["X-Request-ID"]
            hostile = client.get("/v2/", headers={"X-Request-ID": "a b\tc" + "x" * 300})
            replaced = hostile.headers["X-Request-ID"]
            assert re.fullmatch(r"[0-9a-f]{32}", replaced)  # a fresh id, not the hostile one

        line = wait_for_line(server, parse, mine)
        assert line["level"] == "info"
        assert line["method"] == "POST"
        assert line["route"] == "/v2/{name:path}/blobs/uploads/"
        assert line["repository"] == "team/app"
        assert str(line["status"]) == "400"
        assert str(line["bytes_in"]) == "3"
        assert str(line["bytes_out"]) == str(len(pushed.content))
        assert float(line["duration_ms"]) >= 0
        assert line["path"].startswith("/v2/team/app/blobs/uploads/?digest=")
        assert line["client"] == "127.0.0.1"
        assert "user" not in line  # nobody authenticated

        listed = wait_for_line(server, parse, generated)
        assert (listed["route"], str(listed["status"])) == ("/v2/{name:path}/tags/list", "404")
        wait_for_line(server, parse, replaced)
    finally:
        server.stop()


def test_access_log_can_be_turned_off(tmp_path: Path) -> None:
    env = {"ARCA_SERVER_LOG_FORMAT": "json", "ARCA_SERVER_ACCESS_LOG": "false"}
    server = ArcaServer(tmp_path / "data", env=env).start()
    try:
        for _ in range(3):
            assert httpx.get(f"{server.url}/v2/", timeout=30).status_code == 200
        time.sleep(0.5)
        assert [r for r in records(server, parse_json) if r["logger"] == "arca.access"] == []
        assert any("startup complete" in r["message"] for r in records(server, parse_json))
    finally:
        server.stop()


def probe_with_tls(server: ArcaServer) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(CLIENT_HELLO)
        return sock.recv(4096)


@pytest.mark.parametrize("level", ["debug", "info"])
def test_a_tls_probe_is_one_debug_line_not_a_warning(tmp_path: Path, level: str) -> None:
    env = {"ARCA_SERVER_LOG_FORMAT": "json", "ARCA_SERVER_LOG_LEVEL": level}
    server = ArcaServer(tmp_path / "data", env=env).start()
    try:
        assert probe_with_tls(server).startswith(b"HTTP/1.1 400")
        assert httpx.get(f"{server.url}/v2/", timeout=30).status_code == 200  # still serving
        marker = httpx.get(f"{server.url}/v2/", timeout=30).headers["X-Request-ID"]
        wait_for_line(server, parse_json, marker)  # everything before it is written
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Invalid HTTP request received" not in log
    probes = [r for r in records(server, parse_json) if r["message"] == TLS_PROBE_MESSAGE]
    if level == "debug":
        assert [r["level"] for r in probes] == ["debug"]
    else:
        assert probes == []
    assert not [r for r in records(server, parse_json) if r["level"] == "warning"]
