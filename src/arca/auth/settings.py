"""`[auth]` read into the shapes the auth services use, checked when settings load.

Kept apart from the services so `arca check-config` (and `load_settings`) can refuse a
bad policy, group table or OIDC section without building anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arca.auth.policy import Policy, PolicyError

if TYPE_CHECKING:
    from arca.config import AuthSettings, Settings


class AuthConfigError(ValueError):
    """An `[auth]` or `[server]` TLS setting arca cannot use."""


_OIDC_KEYS = frozenset(
    {"issuer", "jwks_url", "audience", "username_claim", "groups_claim", "claim_groups"}
)


@dataclass(frozen=True)
class ClaimGroups:
    """Tokens whose `claim` equals `value` (or lists it) are members of `groups`."""

    claim: str
    value: str
    groups: frozenset[str]


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    jwks_url: str
    audience: str
    username_claim: str = "sub"
    groups_claim: str = ""
    claim_groups: tuple[ClaimGroups, ...] = ()


def policy_of(auth: AuthSettings) -> Policy:
    try:
        for key in ("admins", "admin_groups"):
            if not all(isinstance(name, str) and name for name in getattr(auth, key)):
                raise PolicyError(f"auth.{key} must be a list of names")
        return Policy.parse(auth.policies, auth.admins, auth.admin_groups)
    except PolicyError as exc:
        raise AuthConfigError(str(exc)) from exc


def groups_of(auth: AuthSettings) -> dict[str, frozenset[str]]:
    """`[auth.groups]` (group → users) turned round: user → its groups."""
    members: dict[str, set[str]] = {}
    for group, users in auth.groups.items():
        if not isinstance(users, list) or not all(isinstance(user, str) for user in users):
            raise AuthConfigError(f"auth.groups.{group} must be a list of user names")
        for user in users:
            members.setdefault(user, set()).add(group)
    return {user: frozenset(groups) for user, groups in members.items()}


def oidc_of(auth: AuthSettings) -> OidcSettings | None:
    raw: Mapping[str, Any] = auth.oidc
    if not raw:
        return None
    unknown = set(raw) - _OIDC_KEYS
    if unknown:
        raise AuthConfigError(f"unknown key(s) in [auth.oidc]: {', '.join(sorted(unknown))}")
    for key in ("issuer", "jwks_url", "audience"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise AuthConfigError(f"auth.oidc.{key} is required (a string)")
    for key in ("username_claim", "groups_claim"):
        if not isinstance(raw.get(key, ""), str):
            raise AuthConfigError(f"auth.oidc.{key} must be a string")
    mappings = []
    for index, item in enumerate(raw.get("claim_groups", [])):
        where = f"auth.oidc.claim_groups[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"claim", "value", "groups"}:
            raise AuthConfigError(f"{where} must be a table of claim, value and groups")
        groups = item["groups"]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise AuthConfigError(f"{where}.groups must be a list of group names")
        mappings.append(ClaimGroups(str(item["claim"]), str(item["value"]), frozenset(groups)))
    return OidcSettings(
        issuer=raw["issuer"],
        jwks_url=raw["jwks_url"],
        audience=raw["audience"],
        username_claim=raw.get("username_claim") or "sub",
        groups_claim=raw.get("groups_claim", ""),
        claim_groups=tuple(mappings),
    )


def check(settings: Settings) -> None:
    auth = settings.auth
    policy_of(auth)
    groups_of(auth)
    oidc_of(auth)
    if auth.token_ttl_seconds < 60:
        # Docker's token spec: clients may assume at least 60 seconds.
        raise AuthConfigError("auth.token_ttl_seconds must be at least 60")
    if auth.failed_login_limit < 1 or auth.failed_login_window_seconds < 1:
        raise AuthConfigError("auth.failed_login_limit and _window_seconds must be positive")
    server = settings.server
    if bool(server.tls_cert) != bool(server.tls_key):
        raise AuthConfigError("server.tls_cert and server.tls_key go together")
