"""The JSON Schema of a retention plan (`arca retention plan --json`, POST
/api/v1/retention/plan) and of an apply report, as data.

docs/retention-plan.schema.json is this schema (`python -m arca.lifecycle.plan_schema
> docs/retention-plan.schema.json` regenerates it; a test checks they agree), and the
OpenAPI document embeds the same objects. Written without `$defs`, so it can be
embedded anywhere.
"""

from __future__ import annotations

import json
from typing import Any

_DIGEST = {"type": "string", "pattern": "^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"}
_COUNT = {"type": "integer", "minimum": 0}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(properties),
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


RULES = [
    "pinned",
    "immutable_tag",
    "keep_last",
    "keep_younger_than_seconds",
    "keep_tags",
    "keep_latest_with",
    "keep_latest",
    "untagged",
    "tagged",
    "referrer",
    "index_child",
]

_SAFETY = _object(
    {"pinned": _COUNT, "last_pass": _COUNT, "last_run": _COUNT},
    description="What the safety rules kept: pins, keep_latest_with (the last pass), "
    "keep_latest (the last run).",
)
_COUNTS = {
    "kept": _COUNT,
    "deleted": _COUNT,
    "kept_bytes": _COUNT,
    "deleted_bytes": _COUNT,
    "safety": _SAFETY,
}
_GROUP = {
    "type": "object",
    "additionalProperties": {"type": ["string", "null"]},
    "description": "The group_by labels' values (null: the label is absent).",
}
_REASON = _object(
    {
        "rule": {"type": "string", "enum": RULES},
        "detail": {"type": "string"},
    }
)
_DECISION = _object(
    {
        "digest": _DIGEST,
        "created": {"type": "integer", "description": "Seconds since the epoch."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "size": _COUNT,
        "subject": {"anyOf": [_DIGEST, {"type": "null"}]},
        "group": _GROUP,
        "action": {"type": "string", "enum": ["keep", "delete"]},
        "reasons": {"type": "array", "items": _REASON, "minItems": 1},
    }
)
_REPOSITORY = _object(
    {
        "name": {"type": "string"},
        "policy": {"type": "string"},
        "artifacts": {"type": "array", "items": _DECISION},
        "groups": {"type": "array", "items": _object({"group": _GROUP, **_COUNTS})},
        **_COUNTS,
    }
)

PLAN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://arca.dev/schemas/retention-plan-v1.json",
    "title": "arca retention plan",
    "description": "Every artifact of every repository a policy governs, keep or delete, "
    "with every rule that decided it (docs/lifecycle.md).",
    **_object(
        {
            "version": {"const": 1},
            "plan_id": {"type": "string"},
            "created": {"type": "number", "description": "Seconds since the epoch."},
            "max_delete_fraction": {"type": "number", "minimum": 0, "maximum": 1},
            "repositories": {"type": "array", "items": _REPOSITORY},
            "summary": _object(_COUNTS),
            "unsafe": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Why applying needs force (empty: it does not).",
            },
        }
    ),
}

_OUTCOME = _object(
    {
        "name": {"type": "string"},
        "digest": _DIGEST,
        "tags": {"type": "array", "items": {"type": "string"}},
        "size": _COUNT,
        "outcome": {"type": "string", "enum": ["deleted", "kept", "gone"]},
        "detail": {"type": "string"},
        "trash_id": {"type": ["string", "null"]},
    }
)

REPORT_SCHEMA: dict[str, Any] = _object(
    {
        "run_id": {"type": "string"},
        "plan_id": {"type": "string"},
        "dry_run": {"type": "boolean"},
        "forced": {"type": "boolean"},
        "started": {"type": "number"},
        "finished": {"type": "number"},
        "deleted": _COUNT,
        "deleted_bytes": _COUNT,
        "kept": _COUNT,
        "gone": _COUNT,
        "resumed": _COUNT,
        "unsafe": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Why the plan needed force (a dry run reports, never refuses).",
        },
        "outcomes": {"type": "array", "items": _OUTCOME},
    },
    description="What an apply did (or, dry, would do) with each planned deletion.",
)


def embeddable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without its document keywords, to embed in another document."""
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


if __name__ == "__main__":
    print(json.dumps(PLAN_SCHEMA, indent=2, ensure_ascii=False))
