"""The auth service: who is calling (identify), what they may do (rights), tokens.

One instance per app, built from `[auth]` over the app's storage driver (robots and,
without configured keys, the signing key live there). The request path is kept
cheap: a Basic password is checked with bcrypt once and then remembered (by a hash
of name and password, until the htpasswd file changes); a verified bearer token is
remembered until it expires. Nothing here imports starlette.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from arca.auth import robots as robot_names
from arca.auth.policy import ANONYMOUS, OIDC, ROBOT, USER, Policy, Principal
from arca.auth.ratelimit import FailedLogins
from arca.auth.robots import Robot, RobotStore
from arca.auth.settings import groups_of, oidc_of, policy_of
from arca.auth.tokens import REPOSITORY, Claims, Scope, TokenIssuer
from arca.config import Settings
from arca.errors import InvalidToken, TooManyRequests, Unauthorized
from arca.storage.driver import Driver

log = logging.getLogger(__name__)

ANONYMOUS_KIND = "anonymous"
_CACHE_LIMIT = 10_000
_MINTER_DEPTH = 8


@dataclass(frozen=True)
class Identity:
    """The caller of one request."""

    principal: Principal = ANONYMOUS
    claims: Claims | None = None
    """A bearer token's claims: its `access` narrows what the principal may do."""
    robot: Robot | None = None
    presented: bool = False
    """Whether the request carried credentials (an anonymous token counts)."""

    @functools.cached_property
    def name(self) -> str:
        # Worked out once per identity: a remembered one serves many requests.
        return self.principal.policy_name


@dataclass
class LoginEvent:
    """What `on_login` / `on_failed_login` hooks receive (for events and logs)."""

    user: str
    address: str
    ok: bool
    reason: str = ""


@dataclass
class DeniedEvent:
    """A request refused by the access check (401 or 403)."""

    user: str
    address: str
    repository: str
    action: str
    status: int


@dataclass
class _Hooks:
    """Where logins and refusals go besides the log (the events module, when wired)."""

    login: list[Callable[[LoginEvent], object]] = field(default_factory=list)
    denied: list[Callable[[DeniedEvent], object]] = field(default_factory=list)
    """A hook may return an awaitable (publishing an event): it is awaited."""


class AuthService:
    def __init__(self, settings: Settings, driver: Driver) -> None:
        # Imported here: with auth off (the default) no worker loads PyJWT, cryptography,
        # bcrypt or httpx (13 MB of each process; docs/benchmarks.md, "Workers").
        from arca.auth.htpasswd import HtpasswdFile
        from arca.auth.keys import KeyRing
        from arca.auth.oidc import OidcVerifier

        auth = settings.auth
        self.settings = auth
        self.policy: Policy = policy_of(auth)
        self.groups = groups_of(auth)
        self.users = HtpasswdFile(auth.htpasswd) if auth.htpasswd else None
        self.keys = KeyRing(auth.signing_keys)
        self.tokens = TokenIssuer(self.keys, auth.issuer, auth.service)
        self.robots = RobotStore(driver, auth.revocation_check_seconds)
        self.failures = FailedLogins(auth.failed_login_limit, auth.failed_login_window_seconds)
        oidc = oidc_of(auth)
        self.oidc = OidcVerifier(oidc) if oidc is not None else None
        self._driver = driver
        self._passwords: dict[bytes, tuple[int, Principal]] = {}
        self._verified: dict[str, tuple[int, Claims, Identity | None]] = {}
        """Bearer tokens verified → their claims (and, for a user's, the identity)."""
        self._seen: dict[bytes, tuple[int, Identity]] = {}
        """Basic credentials (a hash of the header's text) → the htpasswd user they
        name, with the file's generation when the password was checked."""
        self.hooks = _Hooks()
        self.started = False
        """Whether `ready` has run (the guard asks before awaiting it)."""

    async def ready(self) -> None:
        """Load the signing key from storage once (when none is configured)."""
        if not self.started:
            await self.keys.load_from_storage(self._driver)
            self.started = True

    # -- who ----------------------------------------------------------------------------

    async def identify(self, authorization: str | None, address: str) -> Identity:
        """The caller named by an Authorization header; anonymous without one."""
        if not authorization:
            return Identity()
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            remembered = self._remembered(credentials)
            if remembered is not None:
                return remembered
            user, password = _basic(credentials)
            return await self.login(user, password, address, credentials)
        if scheme == "bearer":
            return await self._bearer(credentials.strip())
        raise Unauthorized("unsupported authorization scheme; use Basic or Bearer")

    def _remembered(self, credentials: str) -> Identity | None:
        """The identity of Basic credentials (the header's base64 part) whose password
        was checked earlier and whose htpasswd file has not changed since; None when
        they are new, or when failed logins are on record (then `login` decides, the
        rate limit first, as for any attempt)."""
        if self.failures.any():
            return None
        users = self.users
        generation = -1
        if users is not None:
            users.refresh()
            generation = users.generation
        cached = self._seen.get(hashlib.sha256(credentials.encode()).digest())
        if cached is None or cached[0] != generation:
            return None
        return cached[1]

    async def login(
        self, user: str, password: str, address: str, credentials: str | None = None
    ) -> Identity:
        """A user name and password (or robot secret, or OIDC token); 401 if wrong.

        `credentials`: the Basic header's base64 text these came from, remembered
        (hashed) with a checked htpasswd user so that `identify` knows it next time."""
        keys = (f"user:{user}", f"address:{address}")
        wait = self.failures.retry_after(keys)
        if wait is not None:
            await self._emit(LoginEvent(user, address, False, "rate limited"))
            raise TooManyRequests(
                "too many failed logins; try again later", headers={"Retry-After": str(wait)}
            )
        identity, fresh = await self._check(user, password)
        if identity is None:
            self.failures.failed(keys)
            await self._emit(LoginEvent(user, address, False, "invalid credentials"))
            raise Unauthorized("invalid credentials")
        if credentials is not None and identity.principal.kind == USER:
            self._remember(credentials, _password_key(user, password), identity)
        if fresh:  # a password checked now, not one remembered from an earlier request
            await self._emit(LoginEvent(identity.name, address, True))
        return identity

    def _remember(self, credentials: str, password_key: bytes, identity: Identity) -> None:
        """Remember the credentials with the htpasswd generation their password was
        checked against (`_check`'s entry), never a later one."""
        checked = self._passwords.get(password_key)
        if checked is None:
            return
        if len(self._seen) > _CACHE_LIMIT:
            self._seen.clear()
        self._seen[hashlib.sha256(credentials.encode()).digest()] = (checked[0], identity)

    async def _check(self, user: str, password: str) -> tuple[Identity | None, bool]:
        if user.startswith(robot_names.USERNAME_PREFIX):
            robot = await self.robots.get(user[len(robot_names.USERNAME_PREFIX) :])
            if robot is None or robot.expired() or not robot.secret_matches(password):
                return None, True
            robot_principal = Principal(robot.name, frozenset(), ROBOT)
            return Identity(robot_principal, robot=robot, presented=True), True
        if self.oidc is not None and password.count(".") == 2 and self.oidc.claims_issuer(password):
            import jwt

            try:
                principal = await self.oidc.verify(password)
            except jwt.PyJWTError:
                return None, True
            return Identity(principal, presented=True), True
        users = self.users
        generation = -1
        if users is not None:
            users.refresh()
            generation = users.generation
        key = _password_key(user, password)
        cached = self._passwords.get(key)
        if cached is not None and cached[0] == generation:
            return Identity(cached[1], presented=True), False
        if users is None:
            from arca.auth.htpasswd import check_password

            await asyncio.to_thread(check_password, password, None)  # same cost either way
            return None, True
        if not await asyncio.to_thread(users.check, user, password):
            return None, True
        principal = Principal(user, self.groups.get(user, frozenset()), USER)
        if len(self._passwords) > _CACHE_LIMIT:
            self._passwords.clear()
        self._passwords[key] = (generation, principal)
        return Identity(principal, presented=True), True

    async def _bearer(self, token: str) -> Identity:
        generation = self.keys.refresh()
        cached = self._verified.get(token)
        if cached is not None and cached[0] == generation:
            claims, known = cached[1], cached[2]
        else:
            claims, known = None, None
        if claims is None:
            import jwt  # loaded with the first AuthService (its KeyRing): a lookup

            try:
                claims = self.tokens.verify(token)
            except jwt.PyJWTError:
                if self.oidc is not None and self.oidc.claims_issuer(token):
                    try:
                        principal = await self.oidc.verify(token)
                    except jwt.PyJWTError:
                        raise InvalidToken() from None
                    return Identity(principal, presented=True)
                raise InvalidToken() from None
            if len(self._verified) > _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = (generation, claims, None)
        if time.time() > claims.expires + 10:
            self._verified.pop(token, None)
            raise InvalidToken()
        if known is not None and self.users is not None and self.users.exists(claims.subject):
            return known  # a user's token, and the user is still there: nothing else to ask
        principal, robot = await self._subject(claims)
        identity = Identity(principal, claims, robot, presented=True)
        if claims.kind == USER:  # its identity follows from the token and the user's presence
            self._verified[token] = (generation, claims, identity)
        return identity

    async def _subject(self, claims: Claims) -> tuple[Principal, Robot | None]:
        """The token's subject as it stands now: a removed user or revoked robot fails."""
        if claims.kind == ANONYMOUS_KIND:
            return ANONYMOUS, None
        if claims.kind == USER:
            if self.users is None or not self.users.exists(claims.subject):
                raise InvalidToken()
            return Principal(claims.subject, self.groups.get(claims.subject, frozenset())), None
        if claims.kind == ROBOT:
            robot = await self.robots.get(claims.subject)
            if robot is None or robot.expired() or robot.robot_id != claims.robot_id:
                raise InvalidToken()
            return Principal(robot.name, frozenset(), ROBOT), robot
        if claims.kind == OIDC and self.oidc is not None:
            return Principal(claims.subject, claims.groups, OIDC), None
        raise InvalidToken()

    async def refresh(self, token: str) -> Identity:
        """The subject of a refresh token (good at the token endpoint only)."""
        import jwt

        try:
            claims = self.tokens.verify(token, use="refresh")
        except jwt.PyJWTError:
            raise Unauthorized("invalid refresh token") from None
        try:
            principal, robot = await self._subject(claims)
        except Unauthorized:
            raise Unauthorized("invalid refresh token") from None
        return Identity(principal, None, robot, presented=True)

    # -- what ---------------------------------------------------------------------------

    async def rights(self, identity: Identity, name: str) -> frozenset[str]:
        """What `identity` may do on repository `name`, now."""
        if identity.robot is not None:
            granted = await self._robot_rights(identity.robot, name, 0)
        else:
            granted = self.policy.allowed(identity.principal, name)
        if identity.claims is not None:
            granted = granted & identity.claims.allows(REPOSITORY, name)
        return granted

    async def policy_rights(self, identity: Identity, name: str) -> frozenset[str]:
        """What the principal may do, ignoring a token's narrowing (for 401 vs 403)."""
        return await self.rights(Identity(identity.principal, None, identity.robot), name)

    async def _robot_rights(self, robot: Robot, name: str, depth: int) -> frozenset[str]:
        granted = robot.grant(name)
        if not granted or depth > _MINTER_DEPTH:
            return frozenset()
        if robot.minter_kind == ROBOT:
            minter = await self.robots.get(robot.minter)
            if minter is None or minter.expired():
                return frozenset()
            return granted & await self._robot_rights(minter, name, depth + 1)
        if robot.minter_kind == USER:
            if self.users is None or not self.users.exists(robot.minter):
                return frozenset()
            principal = Principal(robot.minter, self.groups.get(robot.minter, frozenset()))
        else:
            principal = Principal(robot.minter, robot.minter_groups, robot.minter_kind)
        return granted & self.policy.allowed(principal, name)

    async def grant(self, identity: Identity, requested: Iterable[Scope]) -> list[Scope]:
        """The requested scopes cut down to what the identity may do (a subset is fine)."""
        granted = []
        for scope in requested:
            if scope.type == REPOSITORY:
                actions = scope.actions & await self.rights(identity, scope.name)
            else:
                actions = scope.actions  # registry:catalog:* — the catalog filters itself
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted

    def issue(self, identity: Identity, scopes: Iterable[Scope], *, refresh: bool = False) -> str:
        principal = identity.principal
        kind = ANONYMOUS_KIND if principal.anonymous else principal.kind
        robot_id = identity.robot.robot_id if identity.robot is not None else ""
        if refresh:
            return self.tokens.issue(
                principal.name,
                kind,
                (),
                self.settings.refresh_ttl_seconds,
                groups=principal.groups if kind == OIDC else (),
                robot_id=robot_id,
                use="refresh",
            )
        return self.tokens.issue(
            principal.name,
            kind,
            scopes,
            self.settings.token_ttl_seconds,
            groups=principal.groups if kind == OIDC else (),
            robot_id=robot_id,
        )

    async def denied(self, event: DeniedEvent) -> None:
        log.info(
            "access denied",
            extra={
                "user": event.user,
                "address": event.address,
                "repository": event.repository,  # "name" is a LogRecord field
                "action": event.action,
                "status": event.status,
            },
        )
        for hook in self.hooks.denied:
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("denied hook failed")

    async def _emit(self, event: LoginEvent) -> None:
        log.info(
            "login" if event.ok else "login failed",
            extra={"user": event.user, "address": event.address, "reason": event.reason},
        )
        for hook in self.hooks.login:
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("login hook failed")


def _password_key(user: str, password: str) -> bytes:
    return hashlib.sha256(f"{user}\0{password}".encode()).digest()


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    user, separator, password = decoded.partition(":")
    if not separator:
        raise Unauthorized("malformed Basic credentials")
    return user, password
