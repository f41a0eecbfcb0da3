"""The Docker/OCI token flow as an httpx.Auth, so the suite can test a registry with auth on.

On a 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` it asks the realm
for a token (GET with Basic credentials, as docker and containers/image do), caches
it per scope, and retries once. A `Basic` challenge is answered with Basic.
Everything the registry says stays visible to the tests: a second 401 is returned.
"""

from __future__ import annotations

import re
from collections.abc import Generator

import httpx

_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAMETER.findall(rest))


class BearerAuth(httpx.Auth):
    def __init__(self, username: str, password: str) -> None:
        self._basic = httpx.BasicAuth(username, password)
        self._tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "Authorization" in request.headers:  # the test chose its own credentials
            yield request
            return
        response = yield request
        if response.status_code != 401:
            return
        scheme, parameters = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme == "basic":
            yield self._basic.sync_auth_flow(request).__next__()
            return
        if scheme != "bearer" or "realm" not in parameters:
            return
        scope = parameters.get("scope", "")
        token = self._tokens.get(scope)
        if token is None:
            query = {"service": parameters.get("service", "")}
            if scope:
                query["scope"] = scope
            token_request = httpx.Request("GET", parameters["realm"], params=query)
            token_request = next(self._basic.sync_auth_flow(token_request))
            token_response = yield token_request
            token_response.read()
            if token_response.status_code != 200:
                return
            body = token_response.json()
            token = body.get("token") or body.get("access_token")
            if not token:
                return
            self._tokens[scope] = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
