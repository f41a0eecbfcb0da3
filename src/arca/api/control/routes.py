"""The /api/v1 route table: one line per endpoint (docs/artifacts.md, docs/openapi.json).

Repository names contain `/`, so `{name:path}` is greedy; a name is matched up to the
last `/artifacts…` or `/latest` that completes a route. One path fits two routes:
`<x>/artifacts/latest` is the record of `<x>:latest` or the latest of `<x>/artifacts`.
The record wins (routes are tried in order), so a tag called `latest` can be shown;
`<name>/-/latest` is "latest" for every name, since no name has a `-` component.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from arca.api.control import artifacts
from arca.api.control.openapi import openapi

CONTROL_ROUTES: list[BaseRoute] = [
    Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/repositories/{name:path}/artifacts", artifacts.ArtifactsEndpoint),
    Route(
        "/api/v1/repositories/{name:path}/artifacts/{reference}/verify",
        artifacts.verify,
        methods=["POST"],
    ),
    Route(
        "/api/v1/repositories/{name:path}/artifacts/{reference}", artifacts.record, methods=["GET"]
    ),
    Route("/api/v1/repositories/{name:path}/-/latest", artifacts.latest, methods=["GET"]),
    Route("/api/v1/repositories/{name:path}/latest", artifacts.latest, methods=["GET"]),
]
