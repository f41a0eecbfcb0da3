"""Scopes, and the JWTs the token endpoint issues (Docker token spec, jwt.md claims).

An access token says who (`sub`, and in `arca.kind` whether a user, robot or OIDC
subject; an OIDC subject's groups in `arca.groups`) and what (`access`: a list of
`{type, name, actions}`), for whom (`aud` = the service) and until when (`exp`). A
refresh token (`arca.use = "refresh"`) names only the subject; it is good at the
token endpoint and nowhere else.

Verification takes the key from the ring by `kid` only, with that key's algorithm
only; `iss`, `aud`, `exp`, `nbf`, `iat` are required.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arca.auth.policy import ACTIONS
from arca.errors import ScopeInvalid

if TYPE_CHECKING:
    from arca.auth.keys import KeyRing

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"
LEEWAY_SECONDS = 10


@dataclass(frozen=True)
class Scope:
    """`type:name:actions`; the name may hold `:` (a host with a port), so the type is
    before the first `:` and the actions after the last one."""

    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        kind = kind.split("(", 1)[0]  # a resource class, `repository(plugin)`, is ignored
        if not kind or not name:
            raise ScopeInvalid(f"scope {text[:200]!r} is not type:name:actions")
        wanted = frozenset(a for a in actions.split(",") if a)
        if kind == REPOSITORY:
            if "*" in wanted:
                wanted = (wanted - {"*"}) | ACTIONS
            unknown = wanted - ACTIONS
            if unknown:
                raise ScopeInvalid(
                    f"scope {text[:200]!r} asks for unknown action(s)"
                    f" {', '.join(sorted(unknown))[:200]}"
                )
        elif kind == REGISTRY:
            if name != CATALOG or not wanted <= {"*"}:
                raise ScopeInvalid(f"scope {text[:200]!r}: only registry:catalog:* exists")
        else:
            raise ScopeInvalid(f"scope {text[:200]!r}: unknown resource type {kind[:50]!r}")
        return cls(kind, name, wanted)

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Repeated `scope` parameters; each may itself hold several, space-separated."""
    return [Scope.parse(part) for value in values for part in value.split() if part]


@dataclass(frozen=True)
class Claims:
    """A verified token."""

    subject: str
    kind: str
    groups: frozenset[str]
    access: Mapping[tuple[str, str], frozenset[str]]
    expires: float
    token_id: str
    use: str
    robot_id: str = ""

    def allows(self, kind: str, name: str) -> frozenset[str]:
        return self.access.get((kind, name), frozenset())


class TokenIssuer:
    def __init__(self, keys: KeyRing, issuer: str, service: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.service = service

    def issue(
        self,
        subject: str,
        kind: str,
        granted: Iterable[Scope],
        ttl: int,
        *,
        groups: Iterable[str] = (),
        robot_id: str = "",
        use: str = "access",
        now: float | None = None,
    ) -> str:
        import jwt  # here: a worker with auth off loads neither PyJWT nor cryptography

        now = time.time() if now is None else now
        key = self.keys.signing
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + ttl,
            "jti": secrets.token_urlsafe(16),
            "access": [
                {"type": s.type, "name": s.name, "actions": sorted(s.actions)} for s in granted
            ],
            "arca": {"kind": kind, "use": use, "groups": sorted(groups), "rid": robot_id},
        }
        return jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})

    def verify(self, token: str, use: str = "access") -> Claims:
        """The token's claims; raises jwt.InvalidTokenError for anything not ours or valid."""
        import jwt

        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidKeyError("the token's kid names no key of this registry")
        if header.get("alg") != key.algorithm:
            raise jwt.InvalidAlgorithmError("the token's alg is not its key's")
        raw = jwt.decode(
            token,
            key.public,
            algorithms=[key.algorithm],
            audience=self.service,
            issuer=self.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
        )
        arca = raw.get("arca")
        if not isinstance(arca, dict) or arca.get("use") != use:
            raise jwt.InvalidTokenError(f"not an arca {use} token")
        access: dict[tuple[str, str], frozenset[str]] = {}
        for item in raw.get("access") or []:
            if not isinstance(item, dict):
                raise jwt.InvalidTokenError("malformed access claim")
            entry = (str(item.get("type")), str(item.get("name")))
            access[entry] = access.get(entry, frozenset()) | frozenset(item.get("actions") or [])
        return Claims(
            subject=str(raw["sub"]),
            kind=str(arca.get("kind")),
            groups=frozenset(arca.get("groups") or []),
            access=access,
            expires=float(raw["exp"]),
            token_id=str(raw["jti"]),
            use=use,
            robot_id=str(arca.get("rid") or ""),
        )
