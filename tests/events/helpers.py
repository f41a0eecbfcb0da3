"""Reading the event log through /api/v1/events, as a user would."""

from __future__ import annotations

from typing import Any


def events_after(client: Any, after: str | None, **filters: str) -> list[dict[str, Any]]:
    """Every event after `after` (all when None), following the pages to the end."""
    found: list[dict[str, Any]] = []
    cursor = after
    while True:
        params = {"n": "1000", **filters}
        if cursor:
            params["after"] = cursor
        response = client.get("/api/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["events"]
        cursor = page["cursor"] or cursor
        if not page["more"]:
            return found


def head_id(client: Any) -> str | None:
    """The id of the newest event (None for an empty log)."""
    events = events_after(client, None)
    return events[-1]["id"] if events else None
