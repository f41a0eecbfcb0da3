"""Content digests: parsing per the image-spec grammar, and hashers for streams.

`algorithm:encoded` where the algorithm is one arca can verify (sha256, sha512,
blake3). Hashers for sha256 and sha512 can be serialised mid-stream (`rehashes`),
so an upload session's hash state is saved with the session after each chunk and
resumed by any process: closing never re-reads the blob. sha256 is OpenSSL's, which
hashes without holding the GIL (formats/opensslsha.py), in rehashes' state format;
rehashes itself where libcrypto is not usable, and for sha512.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import blake3 as _blake3
import rehashes

from arca.errors import DigestInvalid
from arca.formats.opensslsha import OpenSslSha256

_HEX_LENGTH = {"sha256": 64, "sha512": 128, "blake3": 64}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_LOWER_HEX = re.compile(r"^[a-f0-9]+$")

ALGORITHMS = tuple(_HEX_LENGTH)
"""Algorithms a client may name in a digest, in order of preference."""


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and check a digest string; DIGEST_INVALID says what is wrong."""
        if not _GRAMMAR.fullmatch(value):
            raise DigestInvalid(f"invalid digest {value!r}", {"digest": value})
        algorithm, _, encoded = value.partition(":")
        expected = _HEX_LENGTH.get(algorithm)
        if expected is None:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}",
                {"digest": value},
            )
        if len(encoded) != expected or not _LOWER_HEX.fullmatch(encoded):
            raise DigestInvalid(
                f"invalid {algorithm} digest: expected {expected} lowercase hex characters",
                {"digest": value},
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        hasher = new_hasher(algorithm)
        hasher.update(data)
        return hasher.digest()

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class Hasher(Protocol):
    algorithm: str

    def update(self, data: bytes) -> None: ...

    def digest(self) -> Digest: ...


class ResumableHasher:
    """sha256/sha512 whose state serialises to bytes between requests."""

    def __init__(self, algorithm: str, state: bytes | None = None) -> None:
        cls = {"sha256": OpenSslSha256 or rehashes.PySha256, "sha512": rehashes.PySha512}.get(
            algorithm
        )
        if cls is None:
            raise ValueError(f"no resumable hasher for {algorithm}")
        self.algorithm = algorithm
        self._hasher = cls() if state is None else cls.deserialize(state)

    def update(self, data: bytes) -> None:
        self._hasher.update(data)

    def state(self) -> bytes:
        return bytes(self._hasher.serialize())

    def digest(self) -> Digest:
        # finalize() consumes the hasher; work on a copy so state() stays usable.
        copy = type(self._hasher).deserialize(self._hasher.serialize())
        return Digest(self.algorithm, copy.finalize())


class _HashlibHasher:
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._hasher = hashlib.new(algorithm)

    def update(self, data: bytes) -> None:
        self._hasher.update(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hasher.hexdigest())


class Blake3Hasher:
    def __init__(self) -> None:
        self.algorithm = "blake3"
        # One thread (no max_threads): it still frees the GIL on big updates, and its
        # worker pool's hand-offs (sched_yield, futex) cost more than they saved on 2
        # cores under concurrent pushes (docs/benchmarks.md, "fourth round").
        self._hasher = _blake3.blake3()

    def update(self, data: bytes) -> None:
        self._hasher.update(data)

    def digest(self) -> Digest:
        return Digest("blake3", self._hasher.hexdigest())


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hasher; hashlib's for sha2 since it releases the GIL on big updates."""
    if algorithm == "blake3":
        return Blake3Hasher()
    if algorithm in ("sha256", "sha512"):
        return _HashlibHasher(algorithm)
    raise ValueError(f"unsupported digest algorithm {algorithm}")


class MultiHasher:
    """Several digests of one stream in one pass: the one place that feeds a chunk to
    every hasher (uploads, blob metadata, verify and scrub all hash this way).

    Large chunks are hashed off the event loop by the callers (`update` is plain
    CPU work); hashlib and blake3 release the GIL on big updates, so the hashers
    of one chunk do not serialise other requests.
    """

    def __init__(self, hashers: Sequence[Hasher]) -> None:
        self.hashers = tuple(hashers)
        self.size = 0

    @classmethod
    def of(cls, *algorithms: str) -> MultiHasher:
        return cls([new_hasher(algorithm) for algorithm in algorithms])

    def update(self, data: bytes) -> None:
        for hasher in self.hashers:
            hasher.update(data)
        self.size += len(data)

    def digests(self) -> dict[str, Digest]:
        return {hasher.algorithm: hasher.digest() for hasher in self.hashers}
