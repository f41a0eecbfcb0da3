"""Failed logins counted per user name and per client address, in a sliding window.

After `limit` failures within `window` seconds, further attempts for that user, or
from that address, are refused with 429 and Retry-After until the oldest failure
leaves the window, whether the password is right or not (so a guesser learns
nothing more). Counts live in the process: each replica limits on its own, which
still bounds a guesser to `limit * replicas` tries per window.
"""

from __future__ import annotations

import math
import time
from collections import deque

_MAX_KEYS = 50_000  # beyond this, keys whose window is over are pruned


class FailedLogins:
    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def any(self) -> bool:
        """Whether any failure is on record (within its window or not yet pruned):
        when none is, no key can be over the limit."""
        return bool(self._failures)

    def retry_after(self, keys: tuple[str, ...], now: float | None = None) -> int | None:
        """Seconds to wait when any key is over the limit, else None."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self.limit:
                wait = max(wait, failures[0] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: tuple[str, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) > _MAX_KEYS:
            for key in list(self._failures):
                self._recent(key, now)
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
