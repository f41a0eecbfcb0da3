from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arca.errors import DigestInvalid, ErrorCode, ManifestInvalid, NameInvalid
from arca.formats.digest import Digest
from arca.formats.reference import (
    NAME_MAX_LENGTH,
    is_tag,
    parse_reference,
    validate_name,
    validate_tag,
)

SHA256 = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "library/ubuntu",
        "a/b/c/d/e",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a--b",
        "a----------b",
        "a.b_c__d-e--f",
        "foo/bar.baz/qux_quux/a__b/x-y",
        "9/8/7",
        "a" * NAME_MAX_LENGTH,
        "/".join(["abc"] * 63) + "/ab",  # 254 characters in 64 components
    ],
)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("a" * (NAME_MAX_LENGTH + 1), "256 characters long; the limit is 255"),
        ("Library/ubuntu", "must be lowercase: 'L' at position 0"),
        ("library/Ubuntu", "must be lowercase: 'U' at position 8"),
        ("a..b", "invalid separator '..'"),
        ("a___b", "invalid separator '___'"),
        ("a_-b", "invalid separator '_-'"),
        ("a.-b", "invalid separator '.-'"),
        ("a-.b", "invalid separator '-.'"),
        ("a//b", "empty path component"),
        ("/a", "empty path component"),
        ("a/", "empty path component"),
        ("/", "empty path component"),
        (".a", "'.a' must start with a lowercase letter or digit"),
        ("-a", "must start with a lowercase letter or digit"),
        ("_a", "must start with a lowercase letter or digit"),
        ("a/__b", "'__b' must start with a lowercase letter or digit"),
        ("a.", "'a.' must end with a lowercase letter or digit"),
        ("a-", "must end with a lowercase letter or digit"),
        ("a/b_", "'b_' must end with a lowercase letter or digit"),
        ("..", "must start with a lowercase letter or digit"),
        ("a/../b", "'..' must start with a lowercase letter or digit"),
        ("a b", "invalid character ' ' at position 1"),
        ("a:b", "invalid character ':'"),
        ("a@b", "invalid character '@'"),
        ("a\\b", "invalid character '\\\\'"),
        ("café", "invalid character 'é'"),
        ("a\n", "invalid character '\\n'"),
        ("a\x00b", "invalid character '\\x00'"),
    ],
)
def test_invalid_names_say_what_is_wrong(name: str, fragment: str) -> None:
    with pytest.raises(NameInvalid) as caught:
        validate_name(name)
    assert caught.value.code is ErrorCode.NAME_INVALID
    assert caught.value.status == 400
    assert fragment in caught.value.message
    assert caught.value.detail == {"name": name}


def test_name_detail_is_bounded_for_huge_names() -> None:
    with pytest.raises(NameInvalid) as caught:
        validate_name("a" * 100_000)
    assert len(caught.value.message) < 200
    detail = caught.value.detail
    assert isinstance(detail, dict)
    assert len(detail["name"]) < 400


def test_non_string_name_is_name_invalid() -> None:
    with pytest.raises(NameInvalid, match="must be a string"):
        validate_name(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tag",
    ["latest", "v1.0.0", "_", "_private", "A", "9", "1.0-rc.1_build", "a" * 128, "x" + "-" * 127],
)
def test_valid_tags(tag: str) -> None:
    assert is_tag(tag)
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "fragment"),
    [
        ("", "must not be empty"),
        ("a" * 129, "129 characters long; the limit is 128"),
        (".hidden", "must start with a letter, a digit or '_', not '.'"),
        ("-v1", "must start with a letter, a digit or '_', not '-'"),
        ("v1:2", "invalid character ':'"),
        ("v1/2", "invalid character '/'"),
        ("v 1", "invalid character ' '"),
        ("v1+meta", "invalid character '+'"),
        ("vé", "invalid character 'é'"),
        ("v1\n", "invalid character '\\n'"),
    ],
)
def test_invalid_tags_are_manifest_invalid(tag: str, fragment: str) -> None:
    assert not is_tag(tag)
    with pytest.raises(ManifestInvalid) as caught:
        validate_tag(tag)
    assert caught.value.code is ErrorCode.MANIFEST_INVALID
    assert caught.value.message.startswith("invalid tag: ")
    assert fragment in caught.value.message


def test_is_tag_rejects_non_strings() -> None:
    assert not is_tag(None)
    assert not is_tag(1)
    assert not is_tag(b"latest")


def test_parse_reference_returns_a_digest_for_digests() -> None:
    assert parse_reference(SHA256) == Digest("sha256", "ab" * 32)
    assert parse_reference("sha512:" + "0" * 128) == Digest("sha512", "0" * 128)


def test_parse_reference_returns_the_tag_for_tags() -> None:
    assert parse_reference("latest") == "latest"


@pytest.mark.parametrize(
    "reference",
    [
        "sha256:abc",
        "md5:" + "0" * 32,
        "sha256:" + "AB" * 32,
        "sha256:" + "ab" * 31 + "a\n",  # 64 chars including a final newline
        ":",
        "latest:",
    ],
)
def test_parse_reference_rejects_bad_digests_as_digest_invalid(reference: str) -> None:
    with pytest.raises(DigestInvalid):
        parse_reference(reference)


def test_parse_reference_rejects_bad_tags_as_manifest_invalid() -> None:
    with pytest.raises(ManifestInvalid, match="invalid tag"):
        parse_reference("-bad")


@given(st.text(max_size=300))
def test_validate_name_only_ever_raises_name_invalid(name: str) -> None:
    try:
        result = validate_name(name)
    except NameInvalid as exc:
        message = exc.message
        assert message
    else:
        assert result == name


@given(st.text(max_size=200))
def test_parse_reference_only_raises_catalogued_errors(reference: str) -> None:
    with contextlib.suppress(DigestInvalid, ManifestInvalid):
        parse_reference(reference)


@given(
    st.from_regex(
        r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*", fullmatch=True
    )
)
def test_every_name_of_the_spec_grammar_is_accepted(name: str) -> None:
    if len(name) <= NAME_MAX_LENGTH:
        assert validate_name(name) == name
