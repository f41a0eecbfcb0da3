"""Resumable sha256 by OpenSSL's libcrypto, with rehashes' state format.

Every pushed byte is hashed with sha256, and an upload's sha256 state must serialise
between requests (formats/digest.py). `rehashes` does that but holds the GIL while it
hashes: a 2 MiB block stops the event loop, and every other request with it, for as
long as hashing takes, and sha256 cannot run beside blake3 or the socket reads.
libcrypto's `SHA256_Update` called through ctypes runs without the GIL (ctypes
releases it for every foreign call) and uses the CPU's SHA extensions.

The state crosses processes and versions in rehashes' format (104 bytes: the eight
words of h, the number of whole 64-byte blocks as a little-endian u64, the count of
pending bytes, then the pending bytes padded to 63), converted to and from OpenSSL's
`SHA256_CTX` (h, the length in bits as two 32-bit words, the pending block, its fill
and the digest length). Sessions saved by either implementation resume in the other.

`OpenSslSha256` is None when libcrypto or its SHA256_* functions are missing, or the
context does not have the expected layout (checked at import against hashlib):
then rehashes is used, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import struct
from typing import Any

_CTX_SIZE = 112  # sizeof(SHA256_CTX) with 32-bit SHA_LONG (every Linux ABI arca runs on)
_STATE_SIZE = 104
_PENDING = 63


def _load() -> Any:
    for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            lib.SHA256_Init.argtypes = [ctypes.c_void_p]
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
            lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        except AttributeError:
            continue
        return lib
    return None


_lib = _load()


class _OpenSslSha256:
    """The subset of rehashes.PySha256 that formats/digest.py uses."""

    __slots__ = ("_ctx",)

    def __init__(self) -> None:
        # Room to spare: a larger context than expected would fail the import check,
        # not write past the buffer.
        self._ctx = ctypes.create_string_buffer(2 * _CTX_SIZE)
        _lib.SHA256_Init(self._ctx)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)
        _lib.SHA256_Update(self._ctx, data, len(data))

    def serialize(self) -> bytes:
        raw: bytes = self._ctx.raw
        low, high, pending = (int(word) for word in struct.unpack_from("<II64xI", raw, 32))
        blocks = (((high << 32) | low) // 8 - pending) // 64
        return (
            raw[:32]
            + blocks.to_bytes(8, "little")
            + bytes([pending])
            + raw[40 : 40 + pending].ljust(_PENDING, b"\0")
        )

    @classmethod
    def deserialize(cls, state: bytes) -> _OpenSslSha256:
        if len(state) != _STATE_SIZE or state[40] > _PENDING:
            raise ValueError("not a sha256 state")
        blocks, pending = int.from_bytes(state[32:40], "little"), state[40]
        bits = blocks * 512 + pending * 8
        hasher = cls()
        ctypes.memmove(
            hasher._ctx,
            state[:32]
            + struct.pack("<II", bits & 0xFFFFFFFF, bits >> 32)
            + state[41 : 41 + pending].ljust(64, b"\0")
            + struct.pack("<II", pending, 32),
            _CTX_SIZE,
        )
        return hasher

    def finalize(self) -> str:
        """The hex digest; like rehashes, the hasher is spent afterwards."""
        out = ctypes.create_string_buffer(32)
        _lib.SHA256_Final(out, self._ctx)
        return out.raw.hex()


def _works() -> bool:
    """The context has the layout assumed above: known answers, and a state that
    round-trips through rehashes' format mid-block."""
    try:
        probe = b"arca" * 33  # 132 bytes: two whole blocks and 4 pending
        hasher = _OpenSslSha256()
        hasher.update(probe)
        state = hasher.serialize()
        if state[32:41] != (2).to_bytes(8, "little") + bytes([4]):
            return False
        resumed = _OpenSslSha256.deserialize(state)
        resumed.update(b"!")
        return resumed.finalize() == hashlib.sha256(probe + b"!").hexdigest()
    except (OSError, ValueError, ctypes.ArgumentError):
        return False


OpenSslSha256: type[_OpenSslSha256] | None = (
    _OpenSslSha256 if _lib is not None and _works() else None
)
