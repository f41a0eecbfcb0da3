from __future__ import annotations

import hashlib

import pytest

from arca.errors import DigestInvalid
from arca.formats.digest import Digest, ResumableHasher

HEX = "a" * 64


@pytest.mark.parametrize(
    "value",
    [
        f"sha256:{HEX}\n",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX.upper()}",
        f"md5:{'a' * 32}",
        f"sha512:{HEX}",
        "sha256",
        f":{HEX}",
        "",
    ],
)
def test_malformed_digests_are_rejected(value):
    with pytest.raises(DigestInvalid):
        Digest.parse(value)


def test_resumed_hasher_matches_one_pass():
    data = bytes(range(256)) * 1000
    hasher = ResumableHasher("sha256")
    for start in range(0, len(data), 7919):
        hasher = ResumableHasher("sha256", hasher.state())
        hasher.update(data[start : start + 7919])
    assert str(hasher.digest()) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert str(Digest.of(data)) == str(hasher.digest())
