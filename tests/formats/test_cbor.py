"""The canonical CBOR codec: one encoding per value, strict decoding, named rules."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import cbor2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from arca.errors import ManifestInvalid
from arca.formats import cbor

DOC = Path(__file__).resolve().parents[2] / "docs" / "cbor-artifacts.md"


def _doc_table(heading: str) -> list[list[str]]:
    """The rows of the first table under `heading` in the doc, cells unquoted."""
    section = DOC.read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith(("## ", "### ")):
            break
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows.append([re.sub(r"^`(.*)`$", r"\1", cell) for cell in cells])
    return rows


ENCODING_EXAMPLES = _doc_table("### Encoding examples")
REJECTED_EXAMPLES = _doc_table("### Rejected inputs")


def _same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True differ; so do ±0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    return a == b


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _rule(data: bytes) -> str:
    with pytest.raises(ManifestInvalid) as caught:
        cbor.decode(data)
    return str(caught.value.detail["rule"])  # type: ignore[index]


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.integers(min_value=-30, max_value=300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(width=32, allow_nan=False, allow_infinity=False)
    | st.floats(width=16, allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


# --------------------------------------------------------------------- doc vectors


def test_doc_has_vectors() -> None:
    assert len(ENCODING_EXAMPLES) >= 30
    assert len(REJECTED_EXAMPLES) >= 25


@pytest.mark.parametrize(
    ("value", "encoded"), ENCODING_EXAMPLES, ids=[r[1] for r in ENCODING_EXAMPLES]
)
def test_doc_encoding_examples_encode_byte_for_byte(value: str, encoded: str) -> None:
    assert cbor.encode(json.loads(value)).hex() == encoded


@pytest.mark.parametrize(
    ("value", "encoded"), ENCODING_EXAMPLES, ids=[r[1] for r in ENCODING_EXAMPLES]
)
def test_doc_encoding_examples_decode_to_their_value(value: str, encoded: str) -> None:
    assert _same(cbor.decode(bytes.fromhex(encoded)), json.loads(value))


@pytest.mark.parametrize(
    ("data", "message", "why"), REJECTED_EXAMPLES, ids=[r[0][:24] for r in REJECTED_EXAMPLES]
)
def test_doc_rejected_inputs_name_their_rule(data: str, message: str, why: str) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        cbor.decode(bytes.fromhex(data))
    assert message in caught.value.message


# --------------------------------------------------------------------- rejections

_TOO_LARGE = b"\x7a" + (cbor.MAX_SIZE).to_bytes(4, "big") + b"a" * cbor.MAX_SIZE

NON_CANONICAL = [
    # (input, rule id, text the message must contain)
    ("9f01ff", "definite-length", "indefinite-length item (RFC 8949 §4.2.1)"),
    ("5f4101ff", "definite-length", "indefinite-length item"),
    ("7f6161ff", "definite-length", "indefinite-length item"),
    ("bf616101ff", "definite-length", "indefinite-length item"),
    ("1817", "shortest-int", "integer not in shortest form (RFC 8949 §4.2.1)"),
    ("190017", "shortest-int", "integer not in shortest form"),
    ("1a0000ffff", "shortest-int", "integer not in shortest form"),
    ("1b00000000ffffffff", "shortest-int", "integer not in shortest form"),
    ("3817", "shortest-int", "integer not in shortest form"),
    ("780161", "shortest-length", "length not in shortest form (RFC 8949 §4.2.1)"),
    ("79000161", "shortest-length", "length not in shortest form"),
    ("980101", "shortest-length", "length not in shortest form"),
    ("b801616101", "shortest-length", "length not in shortest form"),
    ("fa3fc00000", "shortest-float", "float not in shortest form (RFC 8949 §4.2.1)"),
    ("fb3ff8000000000000", "shortest-float", "float not in shortest form"),
    ("fb47efffffe0000000", "shortest-float", "float not in shortest form"),  # FLT_MAX
    ("fa33800000", "shortest-float", "not in shortest form"),  # smallest binary16 subnormal
    ("a2616201616102", "sorted-keys", "map keys not sorted (RFC 8949 §4.2.1)"),
    ("a2626161016162" + "02", "sorted-keys", "map keys not sorted"),
    ("a2616101616102", "unique-keys", "duplicate map key (RFC 8949 §5.6)"),
    ("a3616101616202616102", "sorted-keys", "map keys not sorted"),
    ("c11a665b0d40", "no-tags", "tag 1 (this format allows no tags)"),
    ("c06161", "no-tags", "tag 0"),
    ("d8186161", "no-tags", "tag 24"),
    ("c249010000000000000000", "no-tags", "tag 2"),
    ("0000", "trailing-bytes", "trailing bytes after the data item"),
    ("a0ff", "trailing-bytes", "trailing bytes"),
    ("62c328", "utf-8", "not valid UTF-8 (RFC 8949 §5.3.1)"),
    ("63eda080", "utf-8", "not valid UTF-8"),
    ("62c0af", "utf-8", "not valid UTF-8"),  # overlong "/"
    ("81" * 33 + "00", "max-depth", "nested too deep: more than 32 levels"),
    ("a16161" * 33 + "00", "max-depth", "nested too deep"),
    (_TOO_LARGE.hex(), "max-size", "too large: 4194309 bytes exceeds the limit of 4194304"),
    ("4100", "no-bytes", "byte strings"),
    ("f7", "simple-values", "simple value 23"),
    ("f0", "simple-values", "simple value 16"),
    ("f820", "simple-values", "simple value 32"),
    ("f97e00", "finite-float", "NaN and infinite floats"),
    ("fb7ff8000000000000", "finite-float", "NaN and infinite floats"),
    ("f9fc00", "finite-float", "NaN and infinite floats"),
    ("a10101", "text-keys", "map key that is not a text string"),
    ("a1f66161", "text-keys", "map key that is not a text string"),
    ("", "well-formed", "truncated"),
    ("18", "well-formed", "truncated"),
    ("62c3", "well-formed", "truncated"),
    ("8201", "well-formed", "truncated"),
    ("bbffffffffffffffff", "well-formed", "truncated"),
    ("1c", "well-formed", "reserved additional information 28"),
    ("ff", "well-formed", "break stop code"),
    ("1f", "well-formed", "additional information 31"),
    ("f818", "well-formed", "simple value 24 in two bytes"),
]


@pytest.mark.parametrize(
    ("data", "rule", "message"), NON_CANONICAL, ids=[r[0][:24] for r in NON_CANONICAL]
)
def test_non_canonical_input_is_rejected_naming_the_rule(
    data: str, rule: str, message: str
) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        cbor.decode(bytes.fromhex(data))
    assert message in caught.value.message
    assert caught.value.detail["rule"] == rule  # type: ignore[index]


def test_document_at_the_size_limit_is_accepted() -> None:
    text = "a" * (cbor.MAX_SIZE - 5)
    data = b"\x7a" + len(text).to_bytes(4, "big") + text.encode()
    assert len(data) == cbor.MAX_SIZE
    assert cbor.decode(data) == text


def test_nesting_at_the_depth_limit_is_accepted() -> None:
    data = bytes.fromhex("81" * cbor.MAX_DEPTH + "00")
    value = cbor.decode(data)
    assert _depth(value) == cbor.MAX_DEPTH
    assert cbor.encode(value) == data


def test_limits_can_be_lowered_by_the_caller() -> None:
    with pytest.raises(ManifestInvalid, match="too large"):
        cbor.decode(b"\x63abc", max_size=3)
    with pytest.raises(ManifestInvalid, match="nested too deep"):
        cbor.decode(bytes.fromhex("818100"), max_depth=1)


def test_key_order_is_bytewise_over_encodings_not_over_text() -> None:
    # "b" < "aa" bytewise once encoded (0x61 0x62 < 0x62 0x61 0x61); as text it is not.
    assert cbor.encode({"aa": 1, "b": 2}) == bytes.fromhex("a261620262616101")
    assert _rule(bytes.fromhex("a262616101616202")) == "sorted-keys"


def test_rejections_carry_the_byte_offset() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        cbor.decode(bytes.fromhex("83010218ff00"))
    assert caught.value.detail == {"rule": "trailing-bytes", "offset": 5}
    with pytest.raises(ManifestInvalid) as caught:
        cbor.decode(bytes.fromhex("8301021817"))
    assert caught.value.detail == {"rule": "shortest-int", "offset": 3}


def _nested(levels: int) -> object:
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


UNENCODABLE = [
    (float("nan"), "NaN and infinite floats"),
    (float("-inf"), "NaN and infinite floats"),
    ({1: "x"}, "map key 1 is not text"),
    (b"bytes", "bytes is not a JSON-model value"),
    ((1, 2), "tuple is not a JSON-model value"),
    ({"a": {1, 2}}, "set is not a JSON-model value"),
    (2**64, "integer outside CBOR's 64-bit range"),
    (-(2**64) - 1, "integer outside CBOR's 64-bit range"),
    ("\ud800", "lone surrogate"),
    ({"\udfff": 1}, "lone surrogate"),
    (_nested(cbor.MAX_DEPTH + 1), "nested too deep"),
    ("a" * cbor.MAX_SIZE, "too large"),
]


@pytest.mark.parametrize(("value", "message"), UNENCODABLE, ids=[m for _, m in UNENCODABLE])
def test_values_without_an_encoding_are_refused(value: object, message: str) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        cbor.encode(value)  # type: ignore[arg-type]
    assert message in caught.value.message


# --------------------------------------------------------------------- properties


@settings(deadline=None)
@given(values)
def test_decode_of_encode_is_the_same_value(value: cbor.Value) -> None:
    assume(_depth(value) <= cbor.MAX_DEPTH)
    data = cbor.encode(value)
    assert _same(cbor.decode(data), value)
    assert cbor.encode(cbor.decode(data)) == data


@settings(deadline=None)
@given(values)
def test_encoding_agrees_with_cbor2s_canonical_mode(value: cbor.Value) -> None:
    assume(_depth(value) <= cbor.MAX_DEPTH)
    data = cbor.encode(value)
    assert data == cbor2.dumps(value, canonical=True)
    assert _same(cbor2.loads(data), value)


@settings(deadline=None)
@given(values)
def test_other_encodings_of_a_value_are_rejected_by_rule(value: cbor.Value) -> None:
    assume(_depth(value) <= cbor.MAX_DEPTH)
    canonical = cbor.encode(value)
    # cbor2's default mode writes every float as binary64 and keys in insertion order.
    loose = cbor2.dumps(value)
    if loose != canonical:
        assert _rule(loose) in {"shortest-float", "sorted-keys"}
    if isinstance(value, list | dict):
        assert _rule(cbor2.dumps(value, indefinite_containers=True)) == "definite-length"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_take_the_shortest_exact_width(value: float) -> None:
    data = cbor.encode(value)
    for size, fmt in ((3, ">e"), (5, ">f")):
        try:
            fits = struct.unpack(fmt, struct.pack(fmt, value))[0] == value
        except OverflowError:
            fits = False
        if fits:
            assert len(data) == size
            break
    else:
        assert len(data) == 9
    longer = [b"\xfb" + struct.pack(">d", value)] if len(data) < 9 else []
    if len(data) == 3:
        longer.append(b"\xfa" + struct.pack(">f", value))
    for wide in longer:
        assert _rule(wide) == "shortest-float"


@given(st.integers(min_value=0, max_value=2**64 - 1), st.sampled_from([0, 1]))
def test_integers_take_the_shortest_argument(number: int, major: int) -> None:
    value = number if major == 0 else -1 - number
    data = cbor.encode(value)
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if number < 2 ** (8 * size) and len(data) < 1 + size:
            longer = bytes([major << 5 | info]) + number.to_bytes(size, "big")
            assert _rule(longer) == "shortest-int"


def _decodes_canonically_or_is_rejected(data: bytes) -> None:
    """The one allowed outcome pair: ManifestInvalid, or a value that re-encodes to `data`."""
    try:
        value = cbor.decode(data)
    except ManifestInvalid as error:
        message = error.message
    else:
        assert cbor.encode(value) == data
        return
    assert message.startswith("CBOR ")


@settings(deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    _decodes_canonically_or_is_rejected(data)


# Header bytes of every major type and length form, so fuzzing reaches deep structure.
_TOKENS = st.sampled_from(
    [bytes([b]) for b in (0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x20, 0x38, 0x41, 0x5F)]
    + [bytes([b]) for b in (0x60, 0x61, 0x62, 0x78, 0x7F, 0x80, 0x81, 0x82, 0x9F, 0xA0, 0xA1)]
    + [bytes([b]) for b in (0xA2, 0xBF, 0xC1, 0xD8, 0xF4, 0xF6, 0xF7, 0xF9, 0xFA, 0xFB, 0xFF)]
    + [b"a", b"b", b"\xc3\xa9", b"\xed\xa0\x80", b"\x00\x00", b"\x3c\x00"]
)


@settings(deadline=None)
@given(st.lists(_TOKENS, max_size=40).map(b"".join))
def test_token_soup_never_crashes_the_decoder(data: bytes) -> None:
    _decodes_canonically_or_is_rejected(data)


@settings(deadline=None)
@given(values, st.data())
def test_mutated_encodings_decode_canonically_or_are_rejected(
    value: cbor.Value, data: st.DataObject
) -> None:
    assume(_depth(value) <= cbor.MAX_DEPTH)
    encoded = bytearray(cbor.encode(value))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    action = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    byte = data.draw(st.integers(min_value=0, max_value=255))
    if action == "replace" and index < len(encoded):
        encoded[index] = byte
    elif action == "insert":
        encoded.insert(index, byte)
    elif action == "delete" and index < len(encoded):
        del encoded[index]
    else:
        del encoded[index:]
    _decodes_canonically_or_is_rejected(bytes(encoded))
