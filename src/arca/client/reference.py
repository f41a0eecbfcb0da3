"""Artifact references: `NAME:TAG`, `NAME@DIGEST` and `NAME@<short digest>`, and generated tags.

A reference is what a person writes and a pipeline passes on; `ArtifactRef.parse`
reads one, `AsyncArcaClient.resolve` turns a tag or a short digest into the full
manifest digest, and `str()` writes it back (`NAME@sha256:…` once resolved), so a
run can record exactly which artifact it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from arca.client.errors import UsageError
from arca.errors import RegistryError
from arca.formats.digest import Digest
from arca.formats.reference import validate_name, validate_tag

SHORT_DIGEST = re.compile(r"(?:sha256:)?([0-9a-f]{4,63})")
"""A digest prefix as `arca ls` prints it (12 hex digits), at least 4, sha256 implied."""

TEMPLATE_LABEL = "template_id"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """One artifact of repository `name`: by `tag`, or by `digest` (full or a prefix)."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = None) -> ArtifactRef:
        """`NAME:TAG`, `NAME@DIGEST` or `NAME@<hex prefix>`; `NAME` alone takes
        `default_tag`, else it is refused (UsageError)."""
        name, at, digest = text.partition("@")
        tag: str | None = None
        if not at and ":" in name.rsplit("/", 1)[-1]:
            name, _, tag = name.rpartition(":")
        try:
            validate_name(name)
            if tag is not None:
                validate_tag(tag)
            if at and not SHORT_DIGEST.fullmatch(digest):
                Digest.parse(digest)
        except RegistryError as error:
            raise UsageError(f"{text!r}: {error.message}") from None
        if not at and tag is None:
            if default_tag is None:
                raise UsageError(f"{text!r} names no artifact: add :TAG or @DIGEST")
            tag = default_tag
        return cls(name, tag, digest or None)

    @property
    def reference(self) -> str:
        """What follows the name: the digest, else the tag."""
        reference = self.digest or self.tag
        assert reference is not None
        return reference

    @property
    def is_short(self) -> bool:
        """A digest prefix, to be resolved before use."""
        return self.digest is not None and SHORT_DIGEST.fullmatch(self.digest) is not None

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def generated_tag(labels: dict[str, str] | None, created: datetime, digest: str) -> str:
    """`[<template>-]<UTC time>-<12 hex of the manifest digest>`: sortable by time within
    a template (and unique: the digest covers every file, label and the time).

    The template is the `template_id` label with characters a tag cannot hold turned
    into `-`, cut to 96 characters; e.g. `at_risk-20260601T020000Z-674b1c2d3e4f`.
    """
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    short = digest.split(":", 1)[-1][:12]
    template = _TAG_UNSAFE.sub("-", (labels or {}).get(TEMPLATE_LABEL, ""))[:96].strip(".-")
    return f"{template}-{stamp}-{short}" if template else f"{stamp}-{short}"
