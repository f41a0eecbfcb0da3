"""Listing helpers shared by the object-store drivers (S3, GCS, Azure Blob).

Object stores list keys in byte order with "directories" as `name/` prefixes, while
the contract wants the names of direct children in code point order, without the
reserved `~` names.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator

from arca.storage.driver import InvalidPath, check_path


def is_object_path(path: str) -> bool:
    """Whether `path` names an object (not a driver's reserved `~` name, nor a key some
    other tool wrote that the contract could not name)."""
    try:
        check_path(path)
    except InvalidPath:
        return False
    return True


async def in_name_order(names: AsyncIterator[str]) -> AsyncIterator[str]:
    """Children in code point order, from the store's order, deduplicated, reserved
    names dropped.

    Stores sort a prefix as `name/`, so `a/` comes after `a-b` and `a.c` although `a`
    sorts first. After seeing name `n`, no later key can belong to a name below the
    shortest prefix of `n` followed by a character below `/` (or `n` itself when there
    is none): everything buffered up to that bound is final. The buffer holds only
    names that share such a prefix, a handful in practice.
    """
    waiting: list[str] = []
    last: str | None = None
    async for name in names:
        if not name.endswith("~"):
            heapq.heappush(waiting, name)
        bound = next((name[:i] for i in range(1, len(name)) if name[i] < "/"), name)
        while waiting and waiting[0] <= bound:
            ready = heapq.heappop(waiting)
            if last is None or ready > last:
                last = ready
                yield ready
    while waiting:
        ready = heapq.heappop(waiting)
        if last is None or ready > last:
            last = ready
            yield ready
