"""The option types the `arca` commands share, in one place: cli.py and every command
module that `register`s on it (retention_commands, quota_command, label_command,
auth/commands) import them from here, so an option reads and behaves the same in
every command, and a module can use them at import time, before cli.py has finished
loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_REGISTRY = "http://127.0.0.1:5000"

# -- against storage (arca gc, trash, scrub, index, retention, quota) -------------------

StorageDir = Annotated[Path | None, typer.Option(help="Directory of the filesystem driver's data.")]
ConfigFile = Annotated[
    Path | None, typer.Option(envvar="ARCA_CONFIG", help="TOML configuration file.")
]

# -- through a registry (the workflow commands) -----------------------------------------

RegistryUrl = Annotated[
    str,
    typer.Option(
        envvar="ARCA_REGISTRY",
        help="The registry: a URL, or HOST:PORT as oras and skopeo take it (http for a"
        " loopback address, https otherwise).",
        show_default=True,
        metavar="URL",
    ),
]
PlainHttp = Annotated[
    bool,
    typer.Option("--plain-http", help="Use http for a HOST:PORT registry that is not loopback."),
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait on the registry.", metavar="SECONDS")]
LabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--label", "-l", help="KEY=VALUE; repeatable, all must match.", metavar="KEY=VALUE"
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        help="Only artifacts created at or after WHEN: a duration ago (30m, 12h, 7d, 2w)"
        " or an ISO 8601 time (UTC unless an offset is given).",
        metavar="WHEN",
    ),
]
Until = Annotated[
    str | None,
    typer.Option(help="Only artifacts created at or before WHEN (as --since).", metavar="WHEN"),
]

# -- output ---------------------------------------------------------------------------

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document, nothing else.")]
