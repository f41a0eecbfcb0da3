"""The keys that sign and verify arca's bearer tokens, and their JWKS.

Keys come from `[auth] signing_keys`: one PEM file, or a directory of them. In a
directory the **last file by name** signs (name them by date: `2026-12-01.pem`) and
every file verifies, so rotation is: add the new key, wait one token lifetime, remove
the old one. The directory is re-read when it changes (checked at most once a
second): no restart. Without `signing_keys`, one EC P-256 key is generated and kept
in storage (`auth/signing-key.pem`), created once with a create-only write so every
replica of one bucket signs and verifies with the same key.

EC P-256 keys sign ES256, RSA keys RS256, Ed25519 keys EdDSA. A token's `kid` must
name one of these keys and its `alg` must be that key's algorithm: a header's own
`jwk`, `x5c` or `jku` is never looked at (CVE-2025-24976 trusted a `kid` with
foreign key material), and `none` or HMAC never verify.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

log = logging.getLogger(__name__)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class SigningKeyError(ValueError):
    """A signing key file arca cannot use."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

        exporter: Any = {"ES256": ECAlgorithm, "RS256": RSAAlgorithm, "EdDSA": OKPAlgorithm}[
            self.algorithm
        ]
        jwk: dict[str, Any] = json.loads(exporter.to_jwk(self.public))
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _algorithm(private: object) -> str:
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if not isinstance(private.curve, ec.SECP256R1):
            raise SigningKeyError("EC signing keys must be P-256 (ES256)")
        return "ES256"
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise SigningKeyError("RSA signing keys must have at least 2048 bits")
        return "RS256"
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise SigningKeyError("signing keys must be EC P-256, RSA or Ed25519 private keys")


def load_pem(data: bytes, source: str = "key") -> SigningKey:
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{source}: not an unencrypted PEM private key") from exc
    algorithm = _algorithm(private)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The kid is a hash of the public key: the same key has the same kid on every replica.
    kid = base64.urlsafe_b64encode(hashlib.sha256(public).digest()[:15]).decode()
    assert isinstance(private, PrivateKey)
    return SigningKey(kid, algorithm, private)


def generate_pem() -> bytes:
    private = ec.generate_private_key(ec.SECP256R1())
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class KeyRing:
    """The current signing key and every key that verifies, by kid."""

    def __init__(self, path: str = "", recheck_seconds: float = 1.0) -> None:
        self._path = Path(path) if path else None
        self._recheck = recheck_seconds
        self._checked = -float("inf")
        self._signature: object = None
        self._lock = threading.Lock()
        self._signing: SigningKey | None = None
        self._by_kid: dict[str, SigningKey] = {}
        self.generation = 0
        """Bumped when the keys change, so caches of verified tokens know to drop."""
        if self._path is not None:
            self._reload(force=True)

    async def load_from_storage(self, driver: Driver) -> None:
        """Without a configured path: the key in storage, created by the first replica."""
        if self._path is not None:
            return
        try:
            data = await driver.get(layout.AUTH_SIGNING_KEY)
        except PathNotFound:
            with contextlib.suppress(AlreadyExists):  # another replica was first: use its
                await driver.put(layout.AUTH_SIGNING_KEY, generate_pem(), if_absent=True)
            data = await driver.get(layout.AUTH_SIGNING_KEY)
        key = load_pem(data, layout.AUTH_SIGNING_KEY)
        self._signing, self._by_kid = key, {key.kid: key}

    def _files(self) -> list[Path]:
        assert self._path is not None
        if self._path.is_dir():
            return sorted(p for p in self._path.iterdir() if p.suffix == ".pem" and p.is_file())
        return [self._path]

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._path is None or (not force and now - self._checked < self._recheck):
            return
        with self._lock:
            self._checked = now
            try:
                files = self._files()
                signature = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files]
            except OSError as exc:
                if force:
                    raise SigningKeyError(f"signing keys {self._path}: {exc.strerror}") from exc
                log.error("signing keys unreadable", extra={"path": str(self._path)})
                return
            if signature == self._signature:
                return
            try:
                keys = [load_pem(p.read_bytes(), str(p)) for p in files]
            except (OSError, SigningKeyError) as exc:
                if force:
                    raise SigningKeyError(str(exc)) from exc
                # Keep the keys we have: a half-copied new file must not stop signing.
                log.error(
                    "signing key rejected", extra={"path": str(self._path), "error": str(exc)}
                )
                return
            if not keys:
                if force:
                    raise SigningKeyError(f"signing keys {self._path}: no .pem file")
                return
            self._signature = signature
            self._signing = keys[-1]
            self._by_kid = {key.kid: key for key in keys}
            self.generation += 1
            log.info("signing keys loaded", extra={"count": len(keys), "kid": keys[-1].kid})

    @property
    def signing(self) -> SigningKey:
        self._reload()
        if self._signing is None:
            raise RuntimeError("no signing key loaded (load_from_storage not awaited)")
        return self._signing

    def refresh(self) -> int:
        """Re-read the keys if due; the current generation."""
        self._reload()
        return self.generation

    def get(self, kid: str) -> SigningKey | None:
        self._reload()
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, Any]:
        self._reload()
        return {"keys": [key.jwk() for key in self._by_kid.values()]}
