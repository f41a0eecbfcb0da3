"""Access control at the HTTP edge: the per-route guard, the token endpoint, JWKS, robots.

Every route in api/routes.py and api/control/routes.py is wrapped by `guard(endpoint,
GET=PULL, …)`: the action each method needs is written beside the route. The guard
runs after routing, so the repository (`{name}`) is known, and before the endpoint,
so nothing is read or written for a caller who may not. A method the route does not
list is refused (405) without calling the endpoint, so a new handler method cannot be
reached unguarded.

Answers: no credentials → 401 with `WWW-Authenticate: Bearer realm,service,scope`;
a bearer token that lacks a scope its subject could get → 403 with a challenge
`error="insufficient_scope"` (RFC 6750; fetch a better token); otherwise → 403 DENIED. The
same answer whether the repository exists or not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from arca.auth.policy import ACTIONS, ADMIN, DELETE, PULL, PUSH, parse_actions
from arca.auth.robots import ROBOT_NAME, USERNAME_PREFIX, RobotExists
from arca.auth.service import AuthService, DeniedEvent, Identity
from arca.auth.tokens import CATALOG, REGISTRY, parse_scopes
from arca.auth.tokens import Scope as TokenScope
from arca.errors import (
    Denied,
    InvalidToken,
    NameUnknown,
    ParameterInvalid,
    ReadOnly,
    RegistryError,
    ScopeInvalid,
    Unauthorized,
    Unsupported,
)
from arca.formats.digest import Digest
from arca.formats.reference import validate_name
from arca.registry.events import acting_as

PUBLIC = "public"
"""No check at all (the token endpoint, JWKS, the OpenAPI document)."""
LOGIN = "login"
"""Any caller that presented credentials, an anonymous token included (`/v2/`)."""
LISTING = "listing"
"""As LOGIN; the answer shows only what the caller may pull (`_catalog`)."""
_WRITES = frozenset({PUSH, DELETE, ADMIN})
_ACCESS = "arca.access"
_FORM_LIMIT = 64 * 1024


class Access:
    """What the guard learnt about the caller, for handlers that filter (catalog, mount)."""

    def __init__(self, auth: AuthService, identity: Identity) -> None:
        self.auth = auth
        self.identity = identity

    async def can(self, name: str, action: str) -> bool:
        return action in await self.auth.rights(self.identity, name)


def access(request: Request) -> Access | None:
    """None when auth is off: everyone may do everything."""
    found: Access | None = request.scope.get(_ACCESS)
    return found


def auth_service(request: Request) -> AuthService | None:
    found: AuthService | None = getattr(request.app.state, "auth", None)
    return found


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def realm(request: Request, auth: AuthService) -> str:
    if auth.settings.realm:
        return auth.settings.realm
    base: str = request.app.state.public_url or str(request.base_url).rstrip("/")
    return f"{base}/auth/token"


def challenge(
    request: Request, auth: AuthService, scope: str | None, error: str | None = None
) -> str:
    parts = [f'realm="{realm(request, auth)}"', f'service="{auth.settings.service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def _scope_for(name: str, action: str) -> str:
    # Clients push after HEAD checks: ask for pull with push, as distribution does.
    actions = "pull,push" if action == PUSH else action
    return f"repository:{name}:{actions}"


class Guarded:
    """An endpoint behind the access check; `actions` maps HTTP methods to actions."""

    def __init__(self, app: ASGIApp, actions: dict[str, str]) -> None:
        self.app = app
        self.actions = actions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        action = self.actions.get(method)
        if action is None and method == "HEAD":
            action = self.actions.get("GET")
        if action is None:
            allow = ", ".join(sorted(self.actions))
            raise Unsupported(
                f"method {method} is not supported on {scope['path']}", headers={"Allow": allow}
            )
        state = scope["app"].state
        if getattr(state, "read_only", False) and action in _WRITES:
            raise ReadOnly()
        auth: AuthService | None = getattr(state, "auth", None)
        if auth is None or action == PUBLIC:
            await self.app(scope, receive, send)
            return
        if not auth.started:
            await auth.ready()
        name = scope.get("path_params", {}).get("name")
        address = _address(scope)
        try:
            identity = await auth.identify(_authorization(scope), address)
        except InvalidToken as error:
            wanted = _scope_for(name, action) if name and action in ACTIONS else None
            header = challenge(Request(scope), auth, wanted, "invalid_token")
            error.headers["WWW-Authenticate"] = header
            await auth.denied(DeniedEvent("", address, name or "", action, 401))
            raise
        except Unauthorized as error:
            wanted = _scope_for(name, action) if name and action in ACTIONS else None
            error.headers["WWW-Authenticate"] = challenge(Request(scope), auth, wanted)
            await auth.denied(DeniedEvent("", address, name or "", action, 401))
            raise
        user = identity.name
        scope.setdefault("state", {})["user"] = user
        if action in (LOGIN, LISTING):
            if not identity.presented:
                scope_hint = "registry:catalog:*" if action == LISTING else None
                header = challenge(Request(scope), auth, scope_hint)
                raise Unauthorized(headers={"WWW-Authenticate": header})
        elif action in ACTIONS:
            name = validate_name(name or "")
            if action not in await auth.rights(identity, name):
                refusal = await _refusal(Request(scope), auth, identity, name, action)
                await auth.denied(DeniedEvent(user, address, name, action, refusal.status))
                raise refusal
        scope[_ACCESS] = Access(auth, identity)
        with acting_as(user or None):  # every event this request causes names it
            await self.app(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    """The first Authorization header, as starlette's `request.headers.get` reads it
    (without building a Request and its header map on every request)."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            text: str = value.decode("latin-1")
            return text
    return None


async def _refusal(
    request: Request, auth: AuthService, identity: Identity, name: str, action: str
) -> RegistryError:
    wanted = _scope_for(name, action)
    if not identity.presented or identity.principal.anonymous:  # signing in may help
        return Unauthorized(headers={"WWW-Authenticate": challenge(request, auth, wanted)})
    if identity.claims is not None and action in await auth.policy_rights(identity, name):
        # RFC 6750 §3.1: 403 with the scope needed, so the client fetches a better token.
        header = challenge(request, auth, wanted, "insufficient_scope")
        return Denied("the token does not grant this", headers={"WWW-Authenticate": header})
    return Denied()


def guard(endpoint: Any, **actions: str) -> ASGIApp:
    """`endpoint` (an HTTPEndpoint class or a request → response function) behind the
    check; keyword arguments map each method to its action (PULL, PUSH, DELETE, ADMIN,
    LOGIN, LISTING or PUBLIC)."""
    for action in actions.values():
        if action not in ACTIONS | {PUBLIC, LOGIN, LISTING}:
            raise ValueError(f"unknown action {action!r}")
    app = endpoint if isinstance(endpoint, type) else request_response(endpoint)
    return Guarded(app, actions)


# -- what handlers ask -------------------------------------------------------------------


def pull_filter(request: Request) -> Callable[[str], Awaitable[bool]] | None:
    """For listings: a check of pull per repository, or None when auth is off."""
    found = access(request)
    if found is None:
        return None
    identity = found.identity
    claims = identity.claims
    if claims is not None and "*" in claims.allows(REGISTRY, CATALOG):
        # A catalog token lists what its subject may pull, not only what it names.
        identity = Identity(identity.principal, None, identity.robot, identity.presented)

    async def visible(name: str) -> bool:
        return PULL in await found.auth.rights(identity, name)

    return visible


async def mount_source(
    request: Request, name: str, digest: Digest, source: str | None
) -> tuple[bool, str | None]:
    """Whether to try a cross-repository mount, and from where.

    With auth on, a mount needs pull on a repository that holds the blob: the `from`
    one when given (else a normal upload session, never an error that would say the
    blob exists), or, without `from`, any the caller may pull (CVE-2024-39897)."""
    found = access(request)
    if found is None:
        return True, source
    registry = request.app.state.registry
    candidates: list[str]
    if source is not None:
        candidates = [source]
    else:
        names, _ = await registry.catalog.page(registry.settings.limits.catalog_page_size, None)
        candidates = [name, *(n for n in names if n != name)]
    for candidate in candidates:
        if await found.can(candidate, PULL) and await registry.blobs.is_linked(candidate, digest):
            return True, candidate
    return False, None


# -- the token service -------------------------------------------------------------------


def _service(request: Request) -> AuthService:
    auth = auth_service(request)
    if auth is None:
        raise NameUnknown("auth")  # never reached: the routes exist only when auth is on
    return auth


async def _token_response(
    auth: AuthService, identity: Identity, scopes: list[TokenScope], refresh: bool
) -> Response:
    granted = await auth.grant(identity, scopes)
    issued = time.time()
    token = auth.issue(identity, granted)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": auth.settings.token_ttl_seconds,
        "issued_at": datetime.fromtimestamp(issued, UTC).isoformat().replace("+00:00", "Z"),
        "scope": " ".join(str(scope) for scope in granted),
    }
    if refresh and identity.presented and not identity.principal.anonymous:
        body["refresh_token"] = auth.issue(identity, (), refresh=True)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _check_service(auth: AuthService, service: str | None) -> None:
    if service and service != auth.settings.service:
        raise ScopeInvalid(f"unknown service {service[:100]!r}; this is {auth.settings.service!r}")


async def token_get(request: Request) -> Response:
    """Docker token spec GET: Basic credentials (or none: anonymous), repeated `scope`."""
    auth = _service(request)
    await auth.ready()
    _check_service(auth, request.query_params.get("service"))
    scopes = parse_scopes(request.query_params.getlist("scope"))
    header = request.headers.get("authorization")
    identity = Identity()
    if header:
        if not header.lower().startswith("basic "):
            raise _basic_challenge(Unauthorized("use Basic credentials at the token endpoint"))
        try:
            identity = await auth.identify(header, _address(request.scope))
        except Unauthorized as error:
            raise _basic_challenge(error) from None
    request.scope.setdefault("state", {})["user"] = identity.name
    offline = request.query_params.get("offline_token", "").lower() == "true"
    return await _token_response(auth, identity, scopes, offline)


async def token_post(request: Request) -> Response:
    """OAuth2 form: grant_type=password (username, password) or refresh_token."""
    auth = _service(request)
    await auth.ready()
    fields = await _form(request)
    _check_service(auth, fields.get("service"))
    scopes = parse_scopes([fields.get("scope", "")])
    grant = fields.get("grant_type")
    address = _address(request.scope)
    try:
        if grant == "password":
            identity = await auth.login(
                fields.get("username", ""), fields.get("password", ""), address
            )
        elif grant == "refresh_token":
            identity = await auth.refresh(fields.get("refresh_token", ""))
        else:
            raise ParameterInvalid("grant_type must be password or refresh_token")
    except Unauthorized as error:
        raise _basic_challenge(error) from None
    request.scope.setdefault("state", {})["user"] = identity.name
    return await _token_response(auth, identity, scopes, refresh=True)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body of at most 64 KiB."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > _FORM_LIMIT:
            raise ParameterInvalid("the token request body is too large")
    try:
        pairs = parse_qsl(data.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise ParameterInvalid("the token request body is not a form") from None
    return dict(pairs)


def _basic_challenge(error: Unauthorized) -> Unauthorized:
    error.headers["WWW-Authenticate"] = 'Basic realm="arca"'
    return error


async def jwks(request: Request) -> Response:
    auth = _service(request)
    await auth.ready()
    return JSONResponse(auth.keys.jwks(), headers={"Cache-Control": "max-age=60"})


# -- robots ------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int | None:
    """`30d`, `12h`, `90m`, `45s` in seconds; `never` is None."""
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if match is None or int(match[1]) == 0:
        raise ParameterInvalid(f"expires {text[:50]!r} is not like 30d, 12h, 90m or never")
    return int(match[1]) * _UNITS[match[2]]


def _sample(glob: str) -> str:
    """A repository name the glob matches, to check a minter holds what it hands out."""
    return glob.replace("**", "x").replace("*", "x").replace("?", "x")


def _robot_json(robot: Any) -> dict[str, Any]:
    return {
        "name": robot.name,
        "username": f"{USERNAME_PREFIX}{robot.name}",
        "repositories": list(robot.repositories),
        "actions": sorted(robot.actions),
        "created_by": robot.minter,
        "created": datetime.fromtimestamp(robot.created, UTC).isoformat(),
        "expires": None
        if robot.expires is None
        else datetime.fromtimestamp(robot.expires, UTC).isoformat(),
    }


async def _may_manage(auth: AuthService, identity: Identity, robot: Any) -> bool:
    if robot.minter == identity.principal.name and robot.minter_kind == identity.principal.kind:
        return True
    for glob in robot.repositories:
        if ADMIN not in await auth.rights(identity, _sample(glob)):
            return False
    return True


def _caller(request: Request) -> tuple[AuthService, Identity]:
    found = access(request)
    if found is None:
        raise NameUnknown("auth")
    if not found.identity.presented or found.identity.principal.anonymous:
        raise Denied("robots are created by a signed-in user")
    return found.auth, found.identity


async def robots_create(request: Request) -> Response:
    auth, identity = _caller(request)
    try:
        body = await request.json()
    except ValueError:
        raise ParameterInvalid("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ParameterInvalid("the body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not ROBOT_NAME.fullmatch(name):
        raise ParameterInvalid(f"name must match {ROBOT_NAME.pattern}")
    globs = body.get("repositories")
    if not isinstance(globs, list) or not globs or not all(isinstance(g, str) and g for g in globs):
        raise ParameterInvalid("repositories must be a non-empty list of globs")
    raw_actions = body.get("actions")
    if not isinstance(raw_actions, list) or not raw_actions:
        raise ParameterInvalid("actions must be a non-empty list")
    try:
        actions = parse_actions([str(a) for a in raw_actions], "actions")
    except ValueError as exc:
        raise ScopeInvalid(str(exc)) from None
    for glob in globs:
        missing = actions - await auth.rights(identity, _sample(glob))
        if missing:
            raise Denied(
                f"you cannot grant {', '.join(sorted(missing))} on {glob[:200]}:"
                " a robot never holds more than its creator"
            )
    lifetime = parse_duration(str(body.get("expires", "30d")))
    expires = None if lifetime is None else time.time() + lifetime
    minter_kind = identity.principal.kind
    try:
        robot, secret = await auth.robots.create(
            name,
            tuple(globs),
            actions,
            expires,
            identity.principal.name,
            minter_kind,
            identity.principal.groups,
        )
    except RobotExists:
        raise ParameterInvalid(f"a robot named {name} exists; revoke it first") from None
    return JSONResponse({**_robot_json(robot), "secret": secret}, status_code=201)


async def robots_list(request: Request) -> Response:
    auth, identity = _caller(request)
    found = [
        _robot_json(robot)
        async for robot in auth.robots.all()
        if await _may_manage(auth, identity, robot)
    ]
    return JSONResponse({"robots": found})


async def robots_revoke(request: Request) -> Response:
    auth, identity = _caller(request)
    name = request.path_params["robot"]
    robot = await auth.robots.get(name)
    # Not yours and not yours to manage: the same 404 as no robot at all.
    if robot is None or not await _may_manage(auth, identity, robot):
        raise ParameterInvalid(f"no robot {name[:64]} that you can revoke")
    await auth.robots.revoke(name)
    return Response(status_code=204)


async def token(request: Request) -> Response:
    """The realm: GET (token spec) and POST (OAuth2) on the one URL, as clients expect."""
    if request.method == "POST":
        return await token_post(request)
    return await token_get(request)


async def robots(request: Request) -> Response:
    if request.method == "POST":
        return await robots_create(request)
    return await robots_list(request)


AUTH_ROUTES: list[BaseRoute] = [
    Route("/auth/token", guard(token, GET=PUBLIC, POST=PUBLIC)),  # token spec, OAuth2
    Route("/auth/jwks", guard(jwks, GET=PUBLIC)),  # the public keys tokens verify with
    Route("/api/v1/robots", guard(robots, GET=LOGIN, POST=LOGIN)),
    Route("/api/v1/robots/{robot}", guard(robots_revoke, DELETE=LOGIN)),
]
