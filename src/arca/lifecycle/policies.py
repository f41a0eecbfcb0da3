"""`[[retention.policies]]`: which artifacts of which repositories to keep (docs/lifecycle.md).

A policy is checked once, when the settings load (`arca serve`, `arca check-config`):
unknown keys, bad regexes, bad globs, negative numbers and a policy that keeps nothing
are errors naming the key, so a typo never turns into deletions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from arca.auth.policy import glob_regex
from arca.config import ConfigError

LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
UNTAGGED = ("delete", "keep")


@dataclass(frozen=True)
class RetentionPolicy:
    """One `[[retention.policies]]` table; the first whose glob matches a repository applies."""

    repositories: tuple[str, ...]
    name: str = ""
    group_by: tuple[str, ...] = ()
    keep_last: int = 0
    keep_last_max_age_seconds: int = 0
    """keep_last counts only artifacts younger than this (0: any age): "keep N, at most D"."""
    keep_younger_than_seconds: int = 0
    keep_tags: tuple[str, ...] = ()
    keep_latest_with: tuple[Mapping[str, str], ...] = ()
    keep_latest: bool = False
    untagged: str = "delete"
    """What happens to an untagged artifact no keep rule keeps: "delete" or "keep"."""
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    _tag_patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    def matches(self, repository: str) -> bool:
        return any(pattern.fullmatch(repository) for pattern in self._patterns)

    def kept_tag(self, tags: tuple[str, ...]) -> tuple[str, str] | None:
        """(regex, tag) of the first tag a keep_tags regex finds, or None."""
        for source, pattern in zip(self.keep_tags, self._tag_patterns, strict=True):
            for tag in tags:
                if pattern.search(tag):
                    return source, tag
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repositories": list(self.repositories),
            "group_by": list(self.group_by),
            "keep_last": self.keep_last,
            "keep_last_max_age_seconds": self.keep_last_max_age_seconds,
            "keep_younger_than_seconds": self.keep_younger_than_seconds,
            "keep_tags": list(self.keep_tags),
            "keep_latest_with": [dict(selector) for selector in self.keep_latest_with],
            "keep_latest": self.keep_latest,
            "untagged": self.untagged,
        }


def first_policy(policies: tuple[RetentionPolicy, ...], repository: str) -> RetentionPolicy | None:
    return next((policy for policy in policies if policy.matches(repository)), None)


_INTS = ("keep_last", "keep_last_max_age_seconds", "keep_younger_than_seconds")
_KEYS = frozenset(
    {
        "repositories",
        "name",
        "group_by",
        *_INTS,
        "keep_tags",
        "keep_latest_with",
        "keep_latest",
        "untagged",
    }
)


def parse_policies(values: Any) -> tuple[RetentionPolicy, ...]:
    """`[[retention.policies]]` checked: ConfigError naming the policy and key."""
    if not isinstance(values, list | tuple):
        raise ConfigError("[[retention.policies]] must be an array of tables")
    policies = []
    for position, table in enumerate(values):
        if isinstance(table, RetentionPolicy):
            policies.append(table)
            continue
        policies.append(_policy(position, table))
    names = [policy.name for policy in policies]
    if len(set(names)) != len(names):
        raise ConfigError("retention.policies: two policies have the same name")
    return tuple(policies)


def _policy(position: int, table: Any) -> RetentionPolicy:
    where = f"retention.policies[{position}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {where}: {', '.join(sorted(unknown))};"
            f" known: {', '.join(sorted(_KEYS))}"
        )
    name = table.get("name", f"policy-{position + 1}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name must be a non-empty string")
    where = f"retention.policies[{position}] ({name})"
    repositories = _strings(where, "repositories", table.get("repositories"))
    if not repositories:
        raise ConfigError(f"{where}.repositories must name at least one repository glob")
    for glob in repositories:
        if not glob or glob.startswith("/") or "//" in glob:
            raise ConfigError(f"{where}.repositories: {glob!r} is not a repository glob")
    group_by = _strings(where, "group_by", table.get("group_by", []))
    for key in group_by:
        if not LABEL_KEY.fullmatch(key):
            raise ConfigError(f"{where}.group_by: {key!r} is not a label key")
    numbers: dict[str, int] = {}
    for key in _INTS:
        value = table.get(key, 0)
        if type(value) is not int or value < 0:
            raise ConfigError(f"{where}.{key} must be an integer >= 0, not {value!r}")
        numbers[key] = value
    keep_tags = _strings(where, "keep_tags", table.get("keep_tags", []))
    tag_patterns = []
    for source in keep_tags:
        try:
            tag_patterns.append(re.compile(source))
        except re.error as error:
            raise ConfigError(f"{where}.keep_tags: {source!r} is not a regex: {error}") from None
    selectors = table.get("keep_latest_with", [])
    if not isinstance(selectors, list | tuple):
        raise ConfigError(f"{where}.keep_latest_with must be an array of tables")
    for selector in selectors:
        if (
            not isinstance(selector, Mapping)
            or not selector
            or not all(
                isinstance(k, str) and LABEL_KEY.fullmatch(k) and isinstance(v, str)
                for k, v in selector.items()
            )
        ):
            raise ConfigError(
                f'{where}.keep_latest_with: {selector!r} must be a table of label = "value"'
            )
    keep_latest = table.get("keep_latest", False)
    if type(keep_latest) is not bool:
        raise ConfigError(f"{where}.keep_latest must be true or false, not {keep_latest!r}")
    untagged = table.get("untagged", "delete")
    if untagged not in UNTAGGED:
        raise ConfigError(f'{where}.untagged must be "delete" or "keep", not {untagged!r}')
    if (
        not numbers["keep_last"]
        and not numbers["keep_younger_than_seconds"]
        and not keep_tags
        and not selectors
        and not keep_latest
        and untagged == "delete"
    ):
        raise ConfigError(
            f"{where} keeps nothing: it would delete every artifact of its repositories;"
            " give it a keep rule (keep_last, keep_latest, …)"
        )
    return RetentionPolicy(
        repositories=repositories,
        name=name,
        group_by=group_by,
        keep_last=numbers["keep_last"],
        keep_last_max_age_seconds=numbers["keep_last_max_age_seconds"],
        keep_younger_than_seconds=numbers["keep_younger_than_seconds"],
        keep_tags=keep_tags,
        keep_latest_with=tuple(dict(selector) for selector in selectors),
        keep_latest=keep_latest,
        untagged=untagged,
        _patterns=tuple(glob_regex(glob) for glob in repositories),
        _tag_patterns=tuple(tag_patterns),
    )


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be an array of strings, not {value!r}")
    return tuple(value)
