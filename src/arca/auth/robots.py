"""Robot tokens: named secrets for CI, each with its own grant, kept hashed in storage.

A robot is created by a signed-in principal (its *minter*) with repository globs,
actions and an expiry. The secret (`arca_…`, 256 random bits) is shown once; storage
keeps only its sha256 (a random secret needs no slow hash) beside the grant, at
`auth/robots/<name>`, so it survives restarts and every replica of one bucket
knows it. A robot signs in as `robot$<name>` with the secret as password.

A robot's rights on a repository are its grant **intersected with its minter's
rights there, evaluated now**: it never holds more than its minter, even after the
minter loses rights, and a robot minted by a robot is bounded by both.
Revoking deletes the record; tokens issued to the robot stop working within
`[auth] revocation_check_seconds` on every replica (at once on the revoking one).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arca.auth.policy import ACTIONS, glob_matches
from arca.storage import layout
from arca.storage.driver import AlreadyExists, Driver, PathNotFound

ROBOT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
USERNAME_PREFIX = "robot$"
SECRET_PREFIX = "arca_"


@dataclass(frozen=True)
class Robot:
    name: str
    robot_id: str
    secret_sha256: str
    repositories: tuple[str, ...]
    actions: frozenset[str]
    minter: str
    minter_kind: str
    minter_groups: frozenset[str]
    created: float
    expires: float | None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def grant(self, name: str) -> frozenset[str]:
        if any(glob_matches(glob, name) for glob in self.repositories):
            return self.actions
        return frozenset()

    def secret_matches(self, secret: str) -> bool:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(digest, self.secret_sha256)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "name": self.name,
                "id": self.robot_id,
                "secret_sha256": self.secret_sha256,
                "repositories": list(self.repositories),
                "actions": sorted(self.actions),
                "minter": {
                    "name": self.minter,
                    "kind": self.minter_kind,
                    "groups": sorted(self.minter_groups),
                },
                "created": self.created,
                "expires": self.expires,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Robot:
        raw = json.loads(data)
        return cls(
            name=raw["name"],
            robot_id=raw["id"],
            secret_sha256=raw["secret_sha256"],
            repositories=tuple(raw["repositories"]),
            actions=frozenset(raw["actions"]) & ACTIONS,
            minter=raw["minter"]["name"],
            minter_kind=raw["minter"]["kind"],
            minter_groups=frozenset(raw["minter"]["groups"]),
            created=float(raw["created"]),
            expires=None if raw["expires"] is None else float(raw["expires"]),
        )


class RobotExists(Exception):
    pass


class RobotStore:
    def __init__(self, driver: Driver, recheck_seconds: float) -> None:
        self._driver = driver
        self._recheck = recheck_seconds
        self._cache: dict[str, tuple[float, Robot | None]] = {}

    async def create(
        self,
        name: str,
        repositories: tuple[str, ...],
        actions: frozenset[str],
        expires: float | None,
        minter: str,
        minter_kind: str,
        minter_groups: frozenset[str] = frozenset(),
    ) -> tuple[Robot, str]:
        """The new robot and its secret (the only time the secret exists in clear)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        robot = Robot(
            name=name,
            robot_id=secrets.token_urlsafe(12),
            secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
            repositories=repositories,
            actions=actions,
            minter=minter,
            minter_kind=minter_kind,
            minter_groups=minter_groups,
            created=time.time(),
            expires=expires,
        )
        try:
            await self._driver.put(layout.robot(name), robot.encode(), if_absent=True)
        except AlreadyExists:
            raise RobotExists(name) from None
        self._cache.pop(name, None)
        return robot, secret

    async def get(self, name: str) -> Robot | None:
        """The robot (expired or not), read from storage at most every recheck seconds."""
        if not ROBOT_NAME.fullmatch(name):
            return None
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and now - cached[0] < self._recheck:
            return cached[1]
        try:
            robot: Robot | None = Robot.decode(await self._driver.get(layout.robot(name)))
        except PathNotFound:
            robot = None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[name] = (now, robot)
        return robot

    async def revoke(self, name: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(layout.robot(name))
        self._cache[name] = (time.monotonic(), None)

    async def all(self) -> AsyncIterator[Robot]:
        async for name in self._driver.list(layout.AUTH_ROBOTS):
            robot = await self.get(name)
            if robot is not None:
                yield robot
