"""The catalog: every repository name, found by walking `repositories/`.

A directory is a repository when it holds `_manifests` or `_layers`; names may nest
(`team/app` and `team/app/tools` are both repositories), so the walk goes on below a
repository too. A depth-first walk is not lexical order ("a/b" sorts after "a-b"),
so names are gathered and sorted before `n`/`last` cut a page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from arca.storage import layout
from arca.storage.driver import Driver


class Catalog:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def page(self, limit: int, last: str | None) -> tuple[list[str], bool]:
        everything = sorted([name async for name in self._walk(layout.REPOSITORIES, "")])
        if last is not None:
            everything = [name for name in everything if name > last]
        return everything[:limit], len(everything) > limit

    async def _walk(self, prefix: str, name: str) -> AsyncIterator[str]:
        children = [child async for child in self._driver.list(prefix)]
        if layout.MANIFESTS_DIR in children or layout.LAYERS_DIR in children:
            yield name
        for child in children:
            if not child.startswith("_"):
                full = f"{name}/{child}" if name else child
                async for found in self._walk(f"{layout.REPOSITORIES}/{full}", full):
                    yield found
