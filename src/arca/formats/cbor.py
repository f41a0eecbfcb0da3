"""Canonical CBOR: RFC 8949 §4.2.1 deterministic encoding over the JSON data model.

An arca artifact's digest is the digest of its bytes, so one artifact must have
exactly one encoding. Encoding uses cbor2's canonical mode. Decoding is strict in
three layers, each catching what the next could not name:

1. a walker over the raw bytes checks every header against the rules and raises
   `ManifestInvalid` naming the rule broken and the byte offset;
2. cbor2 builds the Python value from the now-trusted bytes;
3. the value is re-encoded and compared with the input, so anything the walker
   missed is still rejected rather than given a second encoding.

The data model is JSON's: null, booleans, integers (CBOR's 64-bit range), finite
floats, text, arrays and maps with text keys. Byte strings, tags, `undefined` and
other simple values are rejected: the decoded form must be describable by JSON
Schema and printable as JSON, and each extra type would be one more thing a second
implementation has to canonicalise identically.
"""

from __future__ import annotations

import math
import struct
from typing import TypeAlias

import cbor2

from arca.errors import ManifestInvalid

Value: TypeAlias = "bool | int | float | str | list[Value] | dict[str, Value] | None"
"""A value of the JSON data model, as encoded and decoded here."""

MAX_SIZE = 4 * 1024 * 1024
"""Largest document accepted, in bytes: the same bound registries put on manifests."""

MAX_DEPTH = 32
"""Deepest nesting of arrays and maps accepted; the top-level container is depth 1."""

_INT_MIN = -(2**64)
_INT_MAX = 2**64 - 1
# Smallest argument that needs each additional-information form (24..27).
_SHORTEST_FLOOR = {24: 24, 25: 0x100, 26: 0x10000, 27: 0x100000000}
_FALSE, _TRUE, _NULL = 20, 21, 22


def _fail(rule: str, message: str, offset: int | None = None) -> ManifestInvalid:
    detail: dict[str, object] = {"rule": rule}
    if offset is not None:
        detail["offset"] = offset
    return ManifestInvalid(message, detail)


def _not_canonical(rule: str, what: str, offset: int) -> ManifestInvalid:
    return _fail(rule, f"CBOR not canonical: {what} (RFC 8949 §4.2.1)", offset)


def _malformed(what: str, offset: int) -> ManifestInvalid:
    return _fail("well-formed", f"CBOR malformed: {what} (RFC 8949 §3)", offset)


def _not_allowed(rule: str, what: str, offset: int | None = None) -> ManifestInvalid:
    return _fail(rule, f"CBOR not allowed in this format: {what}", offset)


# --------------------------------------------------------------------------- encode


def encode(value: Value) -> bytes:
    """The one deterministic encoding of `value`; ManifestInvalid if it has none here."""
    _check_value(value, 0)
    data: bytes = cbor2.dumps(value, canonical=True)
    if len(data) > MAX_SIZE:
        raise _too_large(len(data), MAX_SIZE)
    return data


def _check_value(value: object, depth: int) -> None:
    """Refuse, before cbor2 sees it, anything decode would refuse to read back."""
    if value is None or isinstance(value, bool | str | int | float):
        _check_scalar(value)
    elif isinstance(value, list | dict):
        if depth + 1 > MAX_DEPTH:
            raise _too_deep(MAX_DEPTH)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise _not_allowed("text-keys", f"map key {key!r} is not text")
                _check_scalar(key)
            items: list[object] = list(value.values())
        else:
            items = value
        for item in items:
            _check_value(item, depth + 1)
    else:
        raise _not_allowed("data-model", f"{type(value).__name__} is not a JSON-model value")


def _check_scalar(value: object) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise _not_allowed("int-range", "integer outside CBOR's 64-bit range (bignum tags)")
    if isinstance(value, float) and not math.isfinite(value):
        raise _not_allowed("finite-float", "NaN and infinite floats")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _not_allowed("utf-8", "text with a lone surrogate is not UTF-8") from None


# --------------------------------------------------------------------------- decode


def decode(data: bytes, *, max_size: int = MAX_SIZE, max_depth: int = MAX_DEPTH) -> Value:
    """Decode one canonical data item; ManifestInvalid names the first rule broken."""
    if len(data) > max_size:
        raise _too_large(len(data), max_size)
    end = _Walker(data, max_depth).item(0, 0)
    if end != len(data):
        raise _fail(
            "trailing-bytes",
            f"CBOR malformed: trailing bytes after the data item ({len(data) - end} bytes; "
            "a document is exactly one item)",
            end,
        )
    try:
        value: Value = cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False)
    except (cbor2.CBORError, ValueError, OverflowError) as error:  # pragma: no cover
        # The walker has accepted these bytes; cbor2 disagreeing is a bug to report.
        raise _fail("cbor2", f"CBOR could not be decoded: {error}") from error
    if cbor2.dumps(value, canonical=True) != data:  # pragma: no cover - belt and braces
        raise _fail(
            "re-encode", "CBOR not canonical: does not re-encode to the same bytes (RFC 8949 §4.2)"
        )
    return value


def _too_large(size: int, limit: int) -> ManifestInvalid:
    return _fail(
        "max-size", f"CBOR document too large: {size} bytes exceeds the limit of {limit} bytes"
    )


def _too_deep(limit: int, offset: int | None = None) -> ManifestInvalid:
    return _fail(
        "max-depth", f"CBOR nested too deep: more than {limit} levels of arrays and maps", offset
    )


class _Walker:
    """Checks one data item's bytes against the canonical rules without building it.

    Each method takes the offset of an item and returns the offset just past it.
    Recursion is bounded by `max_depth`, so hostile input cannot exhaust the stack.
    """

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth

    def head(self, offset: int) -> tuple[int, int, int, int]:
        """(major type, additional info, argument, offset after the head)."""
        if offset >= len(self.data):
            raise _malformed("truncated: expected a data item", offset)
        initial = self.data[offset]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info, offset + 1
        if info == 31:
            return major, info, 0, offset + 1
        if info > 27:
            raise _malformed(f"reserved additional information {info}", offset)
        size = 1 << (info - 24)
        end = offset + 1 + size
        if end > len(self.data):
            raise _malformed("truncated: argument runs past the end", offset)
        return major, info, int.from_bytes(self.data[offset + 1 : end], "big"), end

    def item(self, offset: int, depth: int) -> int:
        major, info, argument, after = self.head(offset)
        if info == 31:
            return self.indefinite(major, offset)
        if major == 7:
            return self.simple_or_float(info, argument, offset, after)
        if info >= 24 and argument < _SHORTEST_FLOOR[info]:
            what = "integer" if major in (0, 1) else "length" if major != 6 else "tag number"
            rule = "shortest-int" if major in (0, 1) else "shortest-length"
            raise _not_canonical(rule, f"{what} not in shortest form", offset)
        if major in (0, 1):
            return after
        if major == 2:
            raise _not_allowed("no-bytes", "byte strings (the data model is JSON's)", offset)
        if major == 3:
            return self.text(argument, offset, after)
        if major == 6:
            raise _not_allowed("no-tags", f"tag {argument} (this format allows no tags)", offset)
        if depth + 1 > self.max_depth:
            raise _too_deep(self.max_depth, offset)
        if major == 4:
            return self.array(argument, after, depth + 1)
        return self.map(argument, after, depth + 1)

    def indefinite(self, major: int, offset: int) -> int:
        if major in (2, 3, 4, 5):
            raise _not_canonical("definite-length", "indefinite-length item", offset)
        if major == 7:
            raise _malformed("break stop code outside an indefinite-length item", offset)
        raise _malformed(f"additional information 31 with major type {major}", offset)

    def text(self, length: int, offset: int, after: int) -> int:
        end = after + length
        if end > len(self.data):
            raise _malformed("truncated: text string runs past the end", offset)
        try:
            self.data[after:end].decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(
                "utf-8", "CBOR invalid: text string is not valid UTF-8 (RFC 8949 §5.3.1)", offset
            ) from None
        return end

    def array(self, count: int, offset: int, depth: int) -> int:
        if count > len(self.data) - offset:  # every item takes at least one byte
            raise _malformed("truncated: array has fewer items than its length", offset)
        for _ in range(count):
            offset = self.item(offset, depth)
        return offset

    def map(self, count: int, offset: int, depth: int) -> int:
        if 2 * count > len(self.data) - offset:
            raise _malformed("truncated: map has fewer entries than its length", offset)
        previous: bytes | None = None
        for _ in range(count):
            if offset < len(self.data) and self.data[offset] >> 5 != 3:
                raise _not_allowed("text-keys", "map key that is not a text string", offset)
            key_end = self.item(offset, depth)
            key = self.data[offset:key_end]
            if previous is not None and key <= previous:
                raise self.key_order_error(key, previous, offset)
            previous = key
            offset = self.item(key_end, depth)
        return offset

    @staticmethod
    def key_order_error(key: bytes, previous: bytes, offset: int) -> ManifestInvalid:
        if key == previous:
            return _fail("unique-keys", "CBOR invalid: duplicate map key (RFC 8949 §5.6)", offset)
        return _not_canonical("sorted-keys", "map keys not sorted", offset)

    def simple_or_float(self, info: int, argument: int, offset: int, after: int) -> int:
        if info in (_FALSE, _TRUE, _NULL):
            return after
        if info < 24:
            raise _not_allowed(
                "simple-values", f"simple value {info} (only false, true, null)", offset
            )
        if info == 24:
            if argument < 32:
                raise _malformed(f"simple value {argument} in two bytes", offset)
            raise _not_allowed(
                "simple-values", f"simple value {argument} (only false, true, null)", offset
            )
        self.check_float(info, self.data[offset + 1 : after], offset)
        return after

    @staticmethod
    def check_float(info: int, raw: bytes, offset: int) -> None:
        value: float = struct.unpack({25: ">e", 26: ">f", 27: ">d"}[info], raw)[0]
        if not math.isfinite(value):
            raise _not_allowed("finite-float", "NaN and infinite floats", offset)
        # Every binary16 value is a binary32 value, so one step down is enough to check.
        if info > 25 and _fits(value, ">e" if info == 26 else ">f"):
            raise _not_canonical("shortest-float", "float not in shortest form", offset)


def _fits(value: float, fmt: str) -> bool:
    """Whether `value` survives a round trip through the narrower float format."""
    try:
        narrow: float = struct.unpack(fmt, struct.pack(fmt, value))[0]
    except OverflowError:
        return False
    return narrow == value
