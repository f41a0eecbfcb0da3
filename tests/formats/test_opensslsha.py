"""OpenSSL's sha256 behind ResumableHasher: the same answers and the same saved state as
rehashes, so an upload session saved by one resumes in the other (replicas of mixed
versions, a machine without a usable libcrypto)."""

from __future__ import annotations

import hashlib
import os

import pytest
import rehashes

from arca.formats.digest import ResumableHasher
from arca.formats.opensslsha import OpenSslSha256

pytestmark = pytest.mark.skipif(OpenSslSha256 is None, reason="no usable libcrypto here")

# Empty, inside the first block, at and around block boundaries, many blocks.
LENGTHS = [0, 1, 55, 56, 63, 64, 65, 119, 127, 128, 129, 1000, 4096, 1_000_003]


@pytest.mark.parametrize("length", LENGTHS)
def test_saved_state_is_rehashes_state_byte_for_byte(length: int) -> None:
    assert OpenSslSha256 is not None
    data = os.urandom(length)
    theirs = rehashes.PySha256()
    theirs.update(data)
    mine = OpenSslSha256()
    mine.update(data)
    assert mine.serialize() == bytes(theirs.serialize())


@pytest.mark.parametrize("length", LENGTHS)
def test_a_state_saved_by_either_resumes_in_the_other(length: int) -> None:
    assert OpenSslSha256 is not None
    data, more = os.urandom(length), os.urandom(77)
    expected = hashlib.sha256(data + more).hexdigest()
    theirs = rehashes.PySha256()
    theirs.update(data)
    resumed = OpenSslSha256.deserialize(bytes(theirs.serialize()))
    resumed.update(more)
    assert resumed.finalize() == expected
    mine = OpenSslSha256()
    mine.update(data)
    back = rehashes.PySha256.deserialize(mine.serialize())
    back.update(more)
    assert back.finalize() == expected


def test_resumable_sha256_is_openssl_and_takes_any_buffer() -> None:
    assert OpenSslSha256 is not None
    assert isinstance(ResumableHasher("sha256")._hasher, OpenSslSha256)
    hasher = OpenSslSha256()
    hasher.update(memoryview(b"arca"))
    hasher.update(bytearray(b" blob"))
    assert hasher.finalize() == hashlib.sha256(b"arca blob").hexdigest()


def test_a_state_that_is_not_sha256_is_refused() -> None:
    assert OpenSslSha256 is not None
    with pytest.raises(ValueError):
        OpenSslSha256.deserialize(b"\0" * 103)
    with pytest.raises(ValueError):
        OpenSslSha256.deserialize(b"\0" * 40 + b"\x40" + b"\0" * 63)
