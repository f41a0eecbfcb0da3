"""The catalog: every repository name, found by walking `repositories/`.

A directory is a repository when it holds `_manifests` or `_layers`; names may nest
(`team/app` and `team/app/tools` are both repositories), so the walk goes on below a
repository too. A depth-first walk is not lexical order ("a/b" sorts after "a-b"),
so names are gathered and sorted before `n`/`last` cut a page.

What arca never writes there (a symlink out of the root, a directory whose name breaks
the name grammar) is skipped and logged: one odd entry must not fail the listing for
everyone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from arca.errors import NameInvalid
from arca.formats.reference import validate_name
from arca.storage import layout
from arca.storage.driver import Driver, InvalidPath

log = logging.getLogger(__name__)


class Catalog:
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def page(
        self,
        limit: int,
        last: str | None,
        visible: Callable[[str], Awaitable[bool]] | None = None,
    ) -> tuple[list[str], bool]:
        """A page of names; with `visible`, only those it accepts (the caller may pull)."""
        everything = sorted([name async for name in self._walk(layout.REPOSITORIES, "")])
        if visible is not None:
            everything = [name for name in everything if await visible(name)]
        if last is not None:
            everything = [name for name in everything if name > last]
        return everything[:limit], len(everything) > limit

    def repositories(self) -> AsyncIterator[str]:
        """Every repository name, in no promised order (for GC, scrub, rebuilds)."""
        return self._walk(layout.REPOSITORIES, "")

    async def _walk(self, prefix: str, name: str) -> AsyncIterator[str]:
        try:
            children = [child async for child in self._driver.list(prefix)]
        except InvalidPath:
            # The driver refuses the path: on the filesystem, a symlink leading out.
            log.warning("skipped an entry of repositories/ storage refuses", extra={"path": prefix})
            return
        if layout.MANIFESTS_DIR in children or layout.LAYERS_DIR in children:
            yield name
        for child in children:
            if not child.startswith("_"):
                full = f"{name}/{child}" if name else child
                path = layout.repository(full)
                try:
                    validate_name(full)
                except NameInvalid as error:
                    log.warning(
                        "skipped an entry of repositories/ that is not a repository name",
                        extra={"path": path, "error": error.message},
                    )
                    continue
                async for found in self._walk(path, full):
                    yield found
