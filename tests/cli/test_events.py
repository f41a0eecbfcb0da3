"""`arca events`: print the log, follow it, and manage a webhook's dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import json_out, make_invoke
from tests.e2e.content import sha256
from tests.e2e.server import ArcaServer, free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    config = tmp_path / "arca.toml"
    config.write_text(  # a webhook nobody listens to, giving up at once
        "[events]\nstream_poll_seconds = 0.2\n[[events.webhooks]]\n"
        f'name = "ci"\nurl = "http://127.0.0.1:{free_port()}/"\nmax_attempts = 1\n'
    )
    arca = ArcaServer(tmp_path / "data", {"ARCA_CONFIG": str(config)}).start()
    yield arca
    arca.stop()


def _blobs(server: ArcaServer, count: int) -> None:
    for n in range(count):
        blob = f"blob {n}".encode()
        url = f"{server.url}/v2/team/app/blobs/uploads/?digest={sha256(blob)}"
        assert httpx.post(url, content=blob).status_code == 201


def test_events_prints_follows_and_filters(server: ArcaServer) -> None:
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    _blobs(server, 2)
    result = invoke("events", "--json")
    assert result.exit_code == 0, result.output
    listed = json_out(result)
    assert [e["type"] for e in listed["events"]] == [
        "dev.arca.blob.uploaded",
        "dev.arca.upload.closed",
    ] * 2
    assert listed["cursor"] == listed["events"][-1]["id"]
    result = invoke("events", "--type", "blob.uploaded", "--after", listed["events"][0]["id"])
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert "blob.uploaded" in line
    assert line.startswith(listed["events"][2]["id"])
    followed = invoke("events", "--follow", "-n", "3", "--json", "-r", "team/*")
    assert followed.exit_code == 0, followed.output
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert [e["id"] for e in lines] == [e["id"] for e in listed["events"][:3]]


def test_bad_filters_are_usage_errors(server: ArcaServer) -> None:
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    result = invoke("events", "--type", "manifest.pshed", "--json")
    assert result.exit_code == 2
    assert "unknown event type 'manifest.pshed'" in json_out(result)["error"]["message"]
    result = invoke("events", "--after", "yesterday")
    assert result.exit_code == 2
    assert "invalid event id" in result.stderr


def test_dead_letters_are_listed_and_queued_again(server: ArcaServer) -> None:
    invoke = make_invoke({"ARCA_REGISTRY": server.url})
    _blobs(server, 1)
    deadline = time.monotonic() + 60
    letters: list = []
    while len(letters) < 2 and time.monotonic() < deadline:
        result = invoke("events", "dead-letters", "--json")
        assert result.exit_code == 0, result.output
        letters = json_out(result)["dead_letters"]["ci"]
        time.sleep(0.2)
    assert len(letters) == 2
    assert "ConnectError" in letters[0]["error"]
    human = invoke("events", "dead-letters", "ci")
    assert "2 dead letters" in human.stderr
    result = invoke("events", "redeliver", "ci", "--id", letters[0]["event"]["id"], "--json")
    assert result.exit_code == 0, result.output
    assert json_out(result)["queued"] == [letters[0]["event"]["id"]]
    hooks = json_out(invoke("events", "webhooks", "--json"))["webhooks"]
    assert hooks[0]["name"] == "ci"
    assert invoke("events", "redeliver", "nope").exit_code == 2
