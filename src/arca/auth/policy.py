"""Who may do what to which repository: a pure function of the policy and a principal.

The policy is a list of entries, each naming repository globs, the users, groups and
robots it is about, the actions it grants them, and optionally the actions it grants
to anyone at all (`anonymous`). Deciding one (principal, repository) pair:

1. Of every glob in the policy, take those that match the repository name; the
   **longest** glob (as a string) wins. Several entries may name that same glob (or
   another matching glob of the same length): they all apply, and their grants add up.
   A glob that is not the winner grants nothing, even if it matches: a narrow entry
   for `team/secret/**` is not widened by a broad one for `team/**`.
2. No glob matches: nothing is granted (default deny).
   `[auth] admins` and `admin_groups` are outside the globs: every action everywhere.
3. The principal gets the union of `anonymous` of the applying entries, plus
   `actions` of those that name the principal (by user name, by one of its groups,
   or, for a robot, by `robot:<name>`, for an OIDC subject by `oidc:<name>`).

Globs: `*` matches within one path component, `?` one character of it, `**` any
run of characters including `/`; so `builds/**` matches `builds/a` and `builds/a/b`
but not `builds` itself, and `**` matches every name.

Actions are closed: `pull`, `push`, `delete`, `admin`. `push` does not imply `pull`
and `delete` is its own action (a DELETE is never authorised as a push).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

PULL, PUSH, DELETE, ADMIN = "pull", "push", "delete", "admin"
ACTIONS: frozenset[str] = frozenset({PULL, PUSH, DELETE, ADMIN})
NOTHING: frozenset[str] = frozenset()
USER, ROBOT, OIDC = "user", "robot", "oidc"


class PolicyError(ValueError):
    """A policy entry arca cannot use (a typo must never silently grant or deny)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, or the anonymous one (`name == ""`)."""

    name: str = ""
    groups: frozenset[str] = NOTHING
    kind: str = USER
    """`user` (htpasswd), `robot` (a robot token), `oidc` (an external issuer's subject)."""

    @property
    def anonymous(self) -> bool:
        return not self.name

    @property
    def policy_name(self) -> str:
        """How policy entries name this principal: `alice`, `robot:ci`, `oidc:<sub>`."""
        return self.name if self.kind == USER else f"{self.kind}:{self.name}"


ANONYMOUS = Principal()


@lru_cache(maxsize=1024)
def glob_regex(glob: str) -> re.Pattern[str]:
    """`*` within one component, `?` one character of it, `**` anything."""
    parts = []
    index = 0
    while index < len(glob):
        if glob.startswith("**", index):
            parts.append(".*")
            index += 2
        elif glob[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(glob[index]))
            index += 1
    return re.compile("".join(parts))


def glob_matches(glob: str, name: str) -> bool:
    return glob_regex(glob).fullmatch(name) is not None


@dataclass(frozen=True)
class Entry:
    """One `[[auth.policies]]` table."""

    repositories: tuple[str, ...]
    users: frozenset[str] = NOTHING
    groups: frozenset[str] = NOTHING
    actions: frozenset[str] = NOTHING
    anonymous: frozenset[str] = NOTHING

    def grants(self, principal: Principal) -> frozenset[str]:
        granted = self.anonymous
        if principal.anonymous:
            return granted
        if principal.policy_name in self.users or principal.groups & self.groups:
            granted = granted | self.actions
        return granted


_ENTRY_KEYS = frozenset({"repositories", "users", "groups", "actions", "anonymous"})


def parse_actions(values: Iterable[str], where: str) -> frozenset[str]:
    actions = frozenset(values)
    unknown = actions - ACTIONS
    if unknown:
        raise PolicyError(
            f"{where}: unknown action(s) {', '.join(sorted(unknown))};"
            f" use {', '.join(sorted(ACTIONS))}"
        )
    return actions


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def parse_entry(raw: Mapping[str, Any], where: str) -> Entry:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where} must be a table")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    repositories = _strings(raw, "repositories", where)
    if not repositories or any(not glob for glob in repositories):
        raise PolicyError(f"{where}: repositories must list at least one non-empty glob")
    entry = Entry(
        repositories=repositories,
        users=frozenset(_strings(raw, "users", where)),
        groups=frozenset(_strings(raw, "groups", where)),
        actions=parse_actions(_strings(raw, "actions", where), where),
        anonymous=parse_actions(_strings(raw, "anonymous", where), where),
    )
    if entry.actions and not (entry.users or entry.groups):
        raise PolicyError(f"{where}: actions are granted to nobody (add users or groups)")
    return entry


@dataclass(frozen=True)
class Policy:
    entries: tuple[Entry, ...] = ()
    _by_glob: dict[str, tuple[Entry, ...]] = field(default_factory=dict, compare=False)
    admins: frozenset[str] = NOTHING
    """Principals (by policy name) holding every action on every repository."""
    admin_groups: frozenset[str] = NOTHING
    _decided: dict[tuple[str, str, frozenset[str], str], frozenset[str]] = field(
        default_factory=dict, compare=False
    )
    """Answers already worked out: the policy never changes, so they stay true."""

    @classmethod
    def parse(
        cls,
        raw: Sequence[Mapping[str, Any]],
        admins: Iterable[str] = (),
        admin_groups: Iterable[str] = (),
    ) -> Policy:
        entries = [parse_entry(item, f"auth.policies[{i}]") for i, item in enumerate(raw)]
        return cls.of(entries, admins, admin_groups)

    @classmethod
    def of(
        cls, entries: Iterable[Entry], admins: Iterable[str] = (), admin_groups: Iterable[str] = ()
    ) -> Policy:
        entries = tuple(entries)
        by_glob: dict[str, list[Entry]] = {}
        for entry in entries:
            for glob in entry.repositories:
                by_glob.setdefault(glob, []).append(entry)
        # Longest first, so the first length that matches is the winner.
        ordered = sorted(by_glob, key=lambda glob: (-len(glob), glob))
        by_length = {glob: tuple(by_glob[glob]) for glob in ordered}
        return cls(entries, by_length, frozenset(admins), frozenset(admin_groups))

    def applying(self, name: str) -> tuple[Entry, ...]:
        """The entries of the longest glob(s) matching `name`; () when none matches."""
        found: list[Entry] = []
        winner: int | None = None
        for glob, entries in self._by_glob.items():
            if winner is not None and len(glob) < winner:
                break
            if glob_matches(glob, name):
                winner = len(glob)
                found.extend(entries)
        return tuple(found)

    def allowed(self, principal: Principal, name: str) -> frozenset[str]:
        """The actions `principal` may take on repository `name`."""
        # The principal's fields, not the principal: a tuple of strings and a frozenset
        # hashes in C, where the dataclass's __hash__ (and __eq__ on a bearer token's
        # fresh principal) would be Python calls on every request.
        key = (principal.name, principal.kind, principal.groups, name)
        found = self._decided.get(key)
        if found is None:
            if len(self._decided) > 50_000:
                self._decided.clear()
            found = self._decided[key] = self._decide(principal, name)
        return found

    def _decide(self, principal: Principal, name: str) -> frozenset[str]:
        if not principal.anonymous and (
            principal.policy_name in self.admins or principal.groups & self.admin_groups
        ):
            return ACTIONS
        granted = NOTHING
        for entry in self.applying(name):
            granted = granted | entry.grants(principal)
        return granted

    def allows_anonymous_anywhere(self) -> bool:
        return any(entry.anonymous for entry in self.entries)
