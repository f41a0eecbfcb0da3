"""Tokens from an external OIDC issuer (CI workload identity): verified with its JWKS.

The JWKS is fetched from `[auth.oidc] jwks_url` and kept for five minutes; a token
whose `kid` is not in it triggers one refetch (at most every 30 seconds), which is
how an issuer's key rotation is picked up. Only asymmetric algorithms verify, with
the key material from the JWKS (never from the token). `iss`, `aud` and `exp` are
required. The subject becomes the principal `oidc:<username_claim>`; its groups are
the `groups_claim` values plus every `claim_groups` mapping that matches, taken
afresh from each token (never merged with an earlier login's, CVE-2025-23208).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx
import jwt

from arca.auth.policy import OIDC, Principal
from arca.auth.settings import OidcSettings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA", "PS256")
_TTL = 300.0
_REFETCH = 30.0


class OidcVerifier:
    def __init__(self, settings: OidcSettings, timeout: float = 5.0) -> None:
        self.settings = settings
        self._timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = -float("inf")
        self._lock = asyncio.Lock()

    def claims_issuer(self, token: str) -> bool:
        """Whether an unverified token says it is from our issuer (to route it here)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.settings.issuer

    async def _refresh(self, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched
            if age < (_REFETCH if force else _TTL):
                return
            self._fetched = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(self.settings.jwks_url)
                    response.raise_for_status()
                    document = response.json()
            except (httpx.HTTPError, json.JSONDecodeError) as exc:
                log.error(
                    "OIDC JWKS fetch failed",
                    extra={"url": self.settings.jwks_url, "error": str(exc)},
                )
                return
            keys = {}
            for raw in document.get("keys", []):
                try:
                    key = jwt.PyJWK(raw)
                except jwt.PyJWKError:
                    continue
                if key.key_id:
                    keys[key.key_id] = key
            self._keys = keys

    async def verify(self, token: str) -> Principal:
        """The principal a valid token names; raises jwt.PyJWTError otherwise."""
        header = jwt.get_unverified_header(token)
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS or not isinstance(kid, str):
            raise jwt.InvalidAlgorithmError("OIDC token: unacceptable alg or no kid")
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise jwt.InvalidKeyError("OIDC token: kid not in the issuer's JWKS")
        if key.algorithm_name and key.algorithm_name != algorithm:
            raise jwt.InvalidAlgorithmError("OIDC token: alg is not its key's")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=self.settings.audience,
            issuer=self.settings.issuer,
            leeway=10,
            options={"require": ["exp", "iss", "aud"]},
        )
        name = claims.get(self.settings.username_claim)
        if not isinstance(name, str) or not name:
            raise jwt.PyJWTError(f"OIDC token: no {self.settings.username_claim} claim")
        return Principal(name, frozenset(self._groups(claims)), OIDC)

    def _groups(self, claims: dict[str, Any]) -> set[str]:
        groups: set[str] = set()
        if self.settings.groups_claim:
            value = claims.get(self.settings.groups_claim)
            if isinstance(value, str):
                groups.add(value)
            elif isinstance(value, list):
                groups.update(v for v in value if isinstance(v, str))
        for mapping in self.settings.claim_groups:
            value = claims.get(mapping.claim)
            if value == mapping.value or (isinstance(value, list) and mapping.value in value):
                groups |= mapping.groups
        return groups
