"""Immutable tags: which `[[immutability]]` rule, if any, protects a tag.

The rules are pure configuration; `TagStore` enforces them where a tag is written or
removed (docs/protection.md, "Immutable tags"): a protected tag is created only if
absent (`put(..., if_absent=True)`), so of two pushes racing to create it exactly one
wins, and it is never moved to another digest or removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from arca.auth.policy import glob_matches
from arca.config import ImmutabilityRule


@dataclass(frozen=True)
class Immutability:
    rules: Sequence[ImmutabilityRule] = ()

    @cached_property
    def _patterns(self) -> list[tuple[ImmutabilityRule, list[re.Pattern[str]]]]:
        return [(rule, [re.compile(tag) for tag in rule.tags]) for rule in self.rules]

    def covers(self, name: str) -> bool:
        """Whether any rule names repository `name` (else no tag of it needs a look)."""
        return any(glob_matches(glob, name) for rule in self.rules for glob in rule.repositories)

    def rule_for(self, name: str, tag: str) -> str | None:
        """The name of the first rule protecting `name:tag`, or None."""
        for rule, patterns in self._patterns:
            if any(glob_matches(glob, name) for glob in rule.repositories) and any(
                pattern.search(tag) for pattern in patterns
            ):
                return rule.name
        return None
