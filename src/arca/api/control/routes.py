"""The /api/v1 route table: one line per endpoint (docs/artifacts.md, docs/openapi.json).

Repository names contain `/`, so `{name:path}` is greedy; a name is matched up to the
last `/artifacts…` or `/latest` that completes a route. One path fits two routes:
`<x>/artifacts/latest` is the record of `<x>:latest` or the latest of `<x>/artifacts`.
The record wins (routes are tried in order), so a tag called `latest` can be shown;
`<name>/-/latest` is "latest" for every name, since no name has a `-` component.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from arca.api.auth import LISTING, LOGIN, PUBLIC, guard
from arca.api.control import artifacts, events, gc, retention
from arca.api.control.openapi import openapi
from arca.auth.policy import ADMIN, DELETE, PULL, PUSH

CONTROL_ROUTES: list[BaseRoute] = [
    Route("/api/v1/openapi.json", guard(openapi, GET=PUBLIC)),
    # Acts on every repository: the handler asks for admin everywhere (api/control/gc.py).
    Route("/api/v1/gc", guard(gc.collect, POST=LOGIN)),
    # Retention acts on every repository a policy governs: admin everywhere, asked by
    # the handlers (api/control/retention.py); pins: admin on the repository.
    Route("/api/v1/retention/plan", guard(retention.plan, POST=LOGIN)),
    Route("/api/v1/retention/apply", guard(retention.apply, POST=LOGIN)),
    Route("/api/v1/pins", guard(retention.all_pins, GET=LISTING)),
    # The log spans every repository: any signed-in caller, each event shown only if the
    # caller may pull its repository (as the catalog does).
    Route("/api/v1/events", guard(events.page, GET=LISTING)),
    Route("/api/v1/events/stream", guard(events.stream, GET=LISTING)),
    Route("/api/v1/events/webhooks", guard(events.webhooks, GET=LISTING)),
    Route(
        "/api/v1/events/webhooks/{webhook}/dead-letters",
        guard(events.dead_letters, GET=LISTING),
    ),
    Route(
        "/api/v1/events/webhooks/{webhook}/dead-letters/redeliver",
        guard(events.redeliver, POST=LISTING),
    ),
    Route(
        "/api/v1/repositories/{name:path}/artifacts",
        guard(artifacts.ArtifactsEndpoint, GET=PULL, DELETE=DELETE),
    ),
    Route(
        "/api/v1/repositories/{name:path}/artifacts/{reference}/verify",
        guard(artifacts.verify, POST=PULL),
    ),
    Route(
        "/api/v1/repositories/{name:path}/artifacts/{reference}/labels",
        guard(artifacts.label, POST=PUSH),
    ),
    Route(
        "/api/v1/repositories/{name:path}/artifacts/{reference}",
        guard(artifacts.record, GET=PULL),
    ),
    Route("/api/v1/repositories/{name:path}/-/latest", guard(artifacts.latest, GET=PULL)),
    Route("/api/v1/repositories/{name:path}/latest", guard(artifacts.latest, GET=PULL)),
    Route("/api/v1/repositories/{name:path}/-/pins", guard(retention.repository_pins, GET=PULL)),
    Route(
        "/api/v1/repositories/{name:path}/-/pins/{reference}",
        guard(retention.pin, PUT=ADMIN, DELETE=ADMIN),
    ),
    Route(
        "/api/v1/repositories/{name:path}/-/digests/{prefix}",
        guard(artifacts.resolve_prefix, GET=PULL),
    ),
]
