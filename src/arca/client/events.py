"""Reading a registry's event log over /api/v1/events: pages, the stream, webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from arca.client.errors import error_for, transport_errors

Event = dict[str, Any]


class EventsClient:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self._url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self._url, timeout=timeout, trust_env=False)

    def __enter__(self) -> EventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        with transport_errors(self._url):
            response = self._http.get(path, params=httpx.QueryParams(tuple(params)))
        if response.status_code != 200:
            raise error_for(response)
        return response.json()

    @staticmethod
    def _filters(types: Sequence[str], repositories: Sequence[str]) -> list[tuple[str, str]]:
        return [("type", t) for t in types] + [("repository", r) for r in repositories]

    def page(
        self,
        after: str | None = None,
        n: int = 100,
        types: Sequence[str] = (),
        repositories: Sequence[str] = (),
    ) -> dict[str, Any]:
        params = [("n", str(n)), *self._filters(types, repositories)]
        if after:
            params.append(("after", after))
        page: dict[str, Any] = self._get("/api/v1/events", params)
        return page

    def iter_events(
        self,
        after: str | None = None,
        types: Sequence[str] = (),
        repositories: Sequence[str] = (),
        limit: int | None = None,
    ) -> Iterator[Event]:
        """Every event after `after` up to the end of the log (or `limit` of them)."""
        count = 0
        while True:
            page = self.page(after, 1000, types, repositories)
            for event in page["events"]:
                if limit is not None and count == limit:
                    return
                count += 1
                yield event
            after = page["cursor"] or after
            if not page["more"]:
                return

    def follow(
        self, after: str | None = None, types: Sequence[str] = (), repositories: Sequence[str] = ()
    ) -> Iterator[Event]:
        """Events as they are appended (Server-Sent Events), from `after` on; forever."""
        headers = {"Last-Event-ID": after} if after else {}
        params = httpx.QueryParams(tuple(self._filters(types, repositories)))
        while True:
            with (
                transport_errors(self._url),
                self._http.stream(
                    "GET",
                    "/api/v1/events/stream",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as response,
            ):
                if response.status_code != 200:
                    response.read()
                    raise error_for(response)
                data = None
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        data = line[len("data: ") :]
                    elif line == "" and data is not None:
                        event: Event = json.loads(data)
                        headers = {"Last-Event-ID": event["id"]}
                        data = None
                        yield event

    def webhooks(self) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = self._get("/api/v1/events/webhooks")["webhooks"]
        return hooks

    def dead_letters(self, webhook: str) -> list[dict[str, Any]]:
        path = f"/api/v1/events/webhooks/{webhook}/dead-letters"
        letters: list[dict[str, Any]] = self._get(path)["dead_letters"]
        return letters

    def redeliver(self, webhook: str, ids: Sequence[str] = ()) -> list[str]:
        path = f"/api/v1/events/webhooks/{webhook}/dead-letters/redeliver"
        with transport_errors(self._url):
            response = self._http.post(path, params=[("id", i) for i in ids])
        if response.status_code != 202:
            raise error_for(response)
        queued: list[str] = response.json()["queued"]
        return queued
