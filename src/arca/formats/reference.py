"""Repository names, tags and references, per the distribution spec's grammar.

    name       [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*
    tag        [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
    reference  tag | digest

Names become storage paths (`repositories/<name>/...`); the grammar already rules out
`.`, `..`, empty and `_`-prefixed components, so no name can escape its directory or
collide with the `_manifests`/`_layers` entries beside it.
"""

from __future__ import annotations

import re

from arca.errors import DigestInvalid, ManifestInvalid, NameInvalid
from arca.formats.digest import Digest

# The spec caps a name at 255 characters. It also notes that many clients limit
# `hostname[:port]/name` as a whole to 255 characters, so a name near the cap may
# be unusable from some clients behind a long host name; arca enforces only the
# spec's hard limit on the name itself.
NAME_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_COMPONENT_RE = re.compile(_COMPONENT)
_NAME_CHARS = re.compile(r"[a-z0-9._/-]")
_SEPARATOR_RUN = re.compile(r"[._-]+")
_VALID_SEPARATOR = re.compile(r"\.|_|__|-+")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_TAG_CHAR = re.compile(r"[a-zA-Z0-9._-]")


def validate_name(name: str) -> str:
    """Return `name` if it is a valid repository name; NAME_INVALID says what is wrong."""
    if isinstance(name, str) and len(name) <= NAME_MAX_LENGTH and _NAME.fullmatch(name):
        return name
    raise NameInvalid(_name_problem(name), {"name": _shorten(name)})


def _name_problem(name: object) -> str:
    if not isinstance(name, str):
        return f"repository name must be a string, not {type(name).__name__}"
    if not name:
        return "repository name must not be empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"repository name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}"
    for position, char in enumerate(name):
        if "A" <= char <= "Z":
            return (
                f"repository name must be lowercase: {char!r} at position {position} "
                f"in {_shorten(name)!r}"
            )
        if not _NAME_CHARS.fullmatch(char):
            return (
                f"repository name contains the invalid character {char!r} at position "
                f"{position}; allowed are a-z, 0-9, '.', '_', '-' and '/'"
            )
    for component in name.split("/"):
        if not component:
            return (
                f"repository name {_shorten(name)!r} has an empty path component "
                "(leading, trailing or doubled '/')"
            )
        if _COMPONENT_RE.fullmatch(component):
            continue
        if not component[0].isalnum():
            return f"path component {component!r} must start with a lowercase letter or digit"
        if not component[-1].isalnum():
            return f"path component {component!r} must end with a lowercase letter or digit"
        for run in _SEPARATOR_RUN.findall(component):
            if not _VALID_SEPARATOR.fullmatch(run):
                return (
                    f"path component {component!r} has the invalid separator {run!r}; "
                    "components are separated by '.', '_', '__' or a run of '-'"
                )
    return f"invalid repository name {_shorten(name)!r}"  # pragma: no cover - unreachable


def is_tag(value: object) -> bool:
    """True if `value` is a tag as the distribution spec defines it."""
    return isinstance(value, str) and _TAG.fullmatch(value) is not None


def validate_tag(tag: str) -> str:
    """Return `tag` if valid; MANIFEST_INVALID ("invalid tag ...") says what is wrong.

    The spec has no TAG_INVALID for this (distribution's means a schema1 tag
    mismatch), and a tag is only ever given where a manifest is pushed or fetched.
    """
    if is_tag(tag):
        return tag
    raise ManifestInvalid(f"invalid tag: {_tag_problem(tag)}", {"tag": _shorten(tag)})


def _tag_problem(tag: object) -> str:
    if not isinstance(tag, str):
        return f"a tag must be a string, not {type(tag).__name__}"
    if not tag:
        return "a tag must not be empty"
    if len(tag) > TAG_MAX_LENGTH:
        return f"{_shorten(tag)!r} is {len(tag)} characters long; the limit is {TAG_MAX_LENGTH}"
    if tag[0] in ".-":
        return f"{tag!r} must start with a letter, a digit or '_', not {tag[0]!r}"
    for position, char in enumerate(tag):
        if not _TAG_CHAR.fullmatch(char):
            return (
                f"{tag!r} contains the invalid character {char!r} at position {position}; "
                "allowed are A-Z, a-z, 0-9, '.', '_' and '-'"
            )
    return f"{tag!r} does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}"  # pragma: no cover


def parse_reference(reference: str) -> Digest | str:
    """A manifest reference: a `Digest` when it contains ':', else a validated tag.

    Tags cannot contain ':', so the split is unambiguous. An invalid digest raises
    DIGEST_INVALID, an invalid tag MANIFEST_INVALID.
    """
    if ":" in reference:
        # Digest.parse's `$` lets one trailing newline through; a reference comes
        # from a URL path, where %0A is easy to send, so refuse it here.
        if "\n" in reference:
            raise DigestInvalid(
                f"invalid digest {_shorten(reference)!r}", {"digest": _shorten(reference)}
            )
        return Digest.parse(reference)
    return validate_tag(reference)


def _shorten(value: object, limit: int = 300) -> object:
    """Keep error messages and details bounded whatever a client sends."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value
