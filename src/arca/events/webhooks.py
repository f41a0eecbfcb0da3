"""Webhooks: every matching event POSTed, at least once, in log order, from the log.

Delivery never queues in memory: each webhook has a cursor in storage (the last
event it delivered or skipped), and its deliverer reads the log a page at a time
after it, so a restart, or another replica, resumes where delivery stopped, and
memory stays flat however long a receiver is down. One replica delivers for a
webhook at a time (a `Lease` in storage); the others stand by.

An event is retried with exponential backoff (with jitter) up to `max_attempts`,
then kept as a dead letter (`layout.webhook_dead_letter`) and delivery goes on.
Later events wait while one is retried, so a receiver sees each repository's events
in log order. Dead letters are listed and queued for redelivery on demand.

Each POST is a structured CloudEvent (`application/cloudevents+json`) with the
binary-mode `ce-*` headers too, and `Arca-Signature: sha256=<hex HMAC-SHA256 of the
body with the webhook's secret>`. Targets that resolve to link-local or cloud
metadata addresses are refused unless the webhook allows them; the connection goes
to the address that was checked, so a DNS answer cannot change between the check
and the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from arca.config import WebhookSettings
from arca.errors import ParameterInvalid
from arca.events.log import CloudEvent, EventFilter, EventId, EventLog, parse_types
from arca.events.ssrf import forbidden_address
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound
from arca.storage.lease import Lease

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Arca-Signature"
PAGE = 100
CURSOR_SAVE_SECONDS = 1.0
LEASE_SECONDS = 30.0


class DeliveryError(Exception):
    """One failed attempt: a refused target, a transport error, a non-2xx answer."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _where(hook: WebhookSettings) -> EventFilter:
    return EventFilter(parse_types(hook.types), tuple(hook.repositories))


class Webhooks:
    """Every configured webhook's deliverer, and the state behind /api/v1/events/webhooks."""

    def __init__(
        self,
        driver: Driver,
        events: EventLog | None,
        hooks: Sequence[WebhookSettings],
        poll_seconds: float = 0.5,
        lease_seconds: float = LEASE_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._driver = driver
        self._log = events
        self._hooks = {hook.name: hook for hook in hooks}
        self._poll = poll_seconds
        self._lease_seconds = lease_seconds
        self._owner = uuid.uuid4().hex
        self._transport = transport
        self._leases: dict[str, Lease] = {}

    def check_name(self, name: str) -> str:
        if name not in self._hooks:
            known = ", ".join(sorted(self._hooks)) or "none"
            raise ParameterInvalid(
                f"no webhook named {name[:64]!r} (configured: {known})", {"webhook": name[:64]}
            )
        return name

    # -- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Before serving: a webhook seen for the first time starts at the log's head
        (it gets what happens from now on, not the whole history)."""
        for hook in self._hooks.values():
            try:
                await self._start_cursor(hook.name)
            except Exception:  # storage down: the deliverer tries again
                log.exception("webhook cursor not set up", extra={"webhook": hook.name})

    async def _start_cursor(self, name: str) -> str:
        """The webhook's cursor, set to the log's head when it has none yet."""
        found = await self._cursor(name)
        if found is not None or self._log is None:
            return found or ""
        head = await self._log.scan_head()
        cursor = str(EventId(head, 9999)) if head else ""
        with contextlib.suppress(AlreadyExists):
            await self._driver.put(layout.webhook_cursor(name), cursor.encode(), if_absent=True)
        return await self._cursor(name) or ""

    async def run(self) -> None:
        """Deliver for every webhook until cancelled."""
        if self._log is None or not self._hooks:
            return
        import httpx  # here: a server without webhooks never loads it

        async with httpx.AsyncClient(
            transport=self._transport, follow_redirects=False, trust_env=False
        ) as client:
            tasks = [
                asyncio.create_task(self._run_one(hook, client)) for hook in self._hooks.values()
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for lease in self._leases.values():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(lease.release())

    async def _run_one(self, hook: WebhookSettings, client: httpx.AsyncClient) -> None:
        lease = Lease(self._driver, f"webhook-{hook.name}", self._lease_seconds, self._owner)
        self._leases[hook.name] = lease
        while True:
            try:
                if await lease.acquire():
                    await self._deliver(hook, lease, client)
                else:
                    await asyncio.sleep(lease.ttl / 3)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery failed", extra={"webhook": hook.name})
                await asyncio.sleep(self._poll)

    async def _deliver(
        self, hook: WebhookSettings, lease: Lease, client: httpx.AsyncClient
    ) -> None:
        """Deliver while holding the lease; returns to renew it."""
        assert self._log is not None
        where = _where(hook)
        raw = await self._start_cursor(hook.name)
        cursor = EventId.parse(raw) if raw else None
        saved, saved_at = cursor, time.monotonic()
        while lease.held and not lease.due:
            await self._redeliver_queued(hook, lease, client)
            page = await self._log.page(cursor, PAGE, where)
            for event in page.events:
                if not await self._send(hook, event, lease, client):
                    return  # the lease ran out while retrying: renew, then go on
                cursor = EventId.parse(event["id"])
                if time.monotonic() - saved_at > CURSOR_SAVE_SECONDS:
                    await self._save_cursor(hook.name, cursor)
                    saved, saved_at = cursor, time.monotonic()
            if page.cursor is not None:
                cursor = EventId.parse(page.cursor)
            if cursor != saved and (not page.more or time.monotonic() - saved_at > 1):
                await self._save_cursor(hook.name, cursor)
                saved, saved_at = cursor, time.monotonic()
            if not page.more:
                await self._log.wait(self._poll)

    async def _send(
        self, hook: WebhookSettings, event: CloudEvent, lease: Lease, client: httpx.AsyncClient
    ) -> bool:
        """Try until delivered or dead-lettered (True), or until the lease needs
        renewing (False: the caller renews and sends the same event again)."""
        attempt = 0
        while True:
            if not lease.held:
                return False
            attempt += 1
            try:
                await self._post(hook, event, attempt, client)
                return True
            except DeliveryError as error:
                if attempt >= hook.max_attempts:
                    await self._dead_letter(hook.name, event, str(error), attempt)
                    return True
                delay = min(hook.backoff_seconds * 2 ** (attempt - 1), hook.backoff_max_seconds)
                delay *= random.uniform(0.8, 1.2)  # jitter, not security
                log.info(
                    "webhook delivery will be retried",
                    extra={"webhook": hook.name, "id": event["id"], "error": str(error)},
                )
                while delay > 0:
                    if lease.due and not await lease.acquire():
                        return False
                    step = min(delay, lease.ttl / 4)
                    await asyncio.sleep(step)
                    delay -= step

    async def _post(
        self, hook: WebhookSettings, event: CloudEvent, attempt: int, client: httpx.AsyncClient
    ) -> None:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "ce-specversion": "1.0",
            "ce-id": event["id"],
            "ce-type": event["type"],
            "ce-source": event["source"],
            "ce-time": event["time"],
            "Arca-Webhook": hook.name,
            "Arca-Delivery-Attempt": str(attempt),
        }
        if event.get("subject"):
            headers["ce-subject"] = event["subject"]
        if hook.secret:
            headers[SIGNATURE_HEADER] = sign(hook.secret, body)
        url, host, extensions = await self._target(hook)
        headers["Host"] = host
        import httpx

        try:
            response = await client.post(
                url,
                content=body,
                headers=headers,
                timeout=hook.timeout_seconds,
                extensions=extensions,
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"{type(error).__name__}: {error}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}")

    async def _target(self, hook: WebhookSettings) -> tuple[str, str, dict[str, Any]]:
        """The URL with its host replaced by a checked address, the Host header, and
        the TLS server name: what connects is what was checked."""
        parts = urlsplit(hook.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as error:
            raise DeliveryError(f"cannot resolve {host}: {error}") from None
        addresses = [str(info[4][0]) for info in infos]
        if not hook.allow_link_local:
            refused = [address for address in addresses if forbidden_address(address)]
            if refused:
                raise DeliveryError(
                    f"refused: {host} resolves to a link-local or metadata address"
                    f" ({refused[0]}); set allow_link_local = true to allow it"
                )
        address = addresses[0]
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rpartition("@")[2]
        extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
        return url, host_header, extensions

    # -- storage -------------------------------------------------------------------------

    async def _cursor(self, name: str) -> str | None:
        try:
            return (await self._driver.get(layout.webhook_cursor(name))).decode()
        except PathNotFound:
            return None

    async def _save_cursor(self, name: str, cursor: EventId | None) -> None:
        if cursor is not None:
            await self._driver.put(layout.webhook_cursor(name), str(cursor).encode())

    async def _dead_letter(self, name: str, event: CloudEvent, error: str, attempts: int) -> None:
        record = {
            "event": event,
            "error": error,
            "attempts": attempts,
            "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        path = layout.webhook_dead_letter(name, event["id"])
        await self._driver.put(path, json.dumps(record).encode())
        log.warning(
            "webhook gave up on an event",
            extra={"webhook": name, "id": event["id"], "error": error},
        )

    async def _redeliver_queued(
        self, hook: WebhookSettings, lease: Lease, client: httpx.AsyncClient
    ) -> None:
        async for event_id in self._driver.list(layout.webhook_redeliveries(hook.name)):
            path = layout.webhook_redelivery(hook.name, event_id)
            try:
                record = json.loads(await self._driver.get(path))
            except PathNotFound:
                continue
            if not await self._send(hook, record["event"], lease, client):
                return
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(path)

    # -- queries -------------------------------------------------------------------------

    async def status(self) -> list[dict[str, Any]]:
        found = []
        for name, hook in sorted(self._hooks.items()):
            parts = urlsplit(hook.url)
            holder = await Lease(self._driver, f"webhook-{name}").holder()
            dead = [item async for item in self._driver.list(layout.webhook_dead_letters(name))]
            queued = [item async for item in self._driver.list(layout.webhook_redeliveries(name))]
            found.append(
                {
                    "name": name,
                    "url": urlunsplit(
                        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
                    ),
                    "types": list(hook.types),
                    "repositories": list(hook.repositories),
                    "cursor": await self._cursor(name) or None,
                    "delivering": holder is not None,
                    "dead_letters": len(dead),
                    "queued_for_redelivery": len(queued),
                }
            )
        return found

    async def dead_letters(self, name: str, limit: int = 1000) -> list[dict[str, Any]]:
        found = []
        async for event_id in self._driver.list(layout.webhook_dead_letters(name)):
            with contextlib.suppress(PathNotFound):
                raw = await self._driver.get(layout.webhook_dead_letter(name, event_id))
                found.append(json.loads(raw))
            if len(found) == limit:
                break
        return found

    async def redeliver(self, name: str, ids: list[str] | None) -> list[str]:
        """Move dead letters (all, or `ids`) to the redelivery queue; the ids moved."""
        wanted = ids or [
            item async for item in self._driver.list(layout.webhook_dead_letters(name))
        ]
        moved = []
        for event_id in wanted:
            source = layout.webhook_dead_letter(name, event_id)
            try:
                data = await self._driver.get(source)
            except PathNotFound:
                continue
            await self._driver.put(layout.webhook_redelivery(name, event_id), data)
            with contextlib.suppress(PathNotFound):
                await self._driver.delete(source)
            moved.append(event_id)
        return moved
