"""No log call passes a fact whose key logging reserves (`name`, `msg`, ...): logging
raises KeyError for it, but only when the level is enabled, so it hides until a server
runs at that level (docs/operations.md)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "arca"
RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def test_no_log_call_uses_a_reserved_fact_name() -> None:
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                    for key in keyword.value.keys:
                        if isinstance(key, ast.Constant) and key.value in RESERVED:
                            found.append(f"{path.relative_to(SRC)}:{node.lineno} {key.value}")
    assert found == []
