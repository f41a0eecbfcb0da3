"""Logins and refusals as domain events: `AuthService.hooks` → the registry's Publisher.

The access layer knows nothing of the event log; `create_app` connects the two here.
A login is published when a credential is checked afresh (a password remembered
from an earlier request is no new login), a refusal for every request the guard
refuses. The event is durable before the answer, like every other event; a log
that cannot be written is logged and never turns a refusal into something else.
"""

from __future__ import annotations

from arca.auth.service import AuthService, DeniedEvent, LoginEvent
from arca.registry.events import AccessDenied, LoggedIn, Publisher


def publish_auth_events(auth: AuthService, publisher: Publisher) -> None:
    async def login(event: LoginEvent) -> None:
        await publisher.publish(
            LoggedIn(
                repository="",
                actor=event.user if event.ok else None,
                user=event.user,
                address=event.address,
                ok=event.ok,
                reason=event.reason,
            )
        )

    async def denied(event: DeniedEvent) -> None:
        await publisher.publish(
            AccessDenied(
                repository=event.repository,
                actor=event.user or None,
                user=event.user,
                address=event.address,
                action=event.action,
                status=event.status,
            )
        )

    auth.hooks.login.append(login)
    auth.hooks.denied.append(denied)
