"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written here as data, next to the shapes it describes; tests validate real answers
against its schemas and check that docs/openapi.json is this document
(`python -m arca.api.control.openapi > docs/openapi.json` regenerates it).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arca import __version__
from arca.api.control._http import DEFAULT_LIMIT, MAX_LIMIT
from arca.control.index import SCAN_LIMIT
from arca.events.log import SCAN_LIMIT as EVENT_SCAN_LIMIT
from arca.lifecycle.plan_schema import PLAN_SCHEMA, REPORT_SCHEMA, embeddable


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERRORS = {
    "400": _json("Errors", "A parameter arca cannot use (`UNSUPPORTED`, `NAME_INVALID`, …)."),
    "404": _json("Errors", "No such repository (`NAME_UNKNOWN`) or artifact (`MANIFEST_UNKNOWN`)."),
    "503": _json("Errors", "Storage does not answer (`UNAVAILABLE`)."),
}
_NAME = {"$ref": "#/components/parameters/name"}
_REFERENCE = {"$ref": "#/components/parameters/reference"}
_LABEL = {"$ref": "#/components/parameters/label"}
_SINCE = {"$ref": "#/components/parameters/since"}
_UNTIL = {"$ref": "#/components/parameters/until"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_DIGEST = {"type": "string", "pattern": "^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_CREATED_SOURCE = {
    "type": "string",
    "enum": ["artifact", "first_seen"],
    "description": "`artifact`: the artifact's own creation time "
    "(`org.opencontainers.image.created`); `first_seen`: it has none, so the time "
    "arca first stored the manifest.",
}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(properties),
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


SCHEMAS: dict[str, Any] = {
    "Errors": _object(
        {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "detail": {},
                    },
                },
            }
        },
        description="The error body of /v2 and /api/v1 alike (src/arca/errors.py).",
    ),
    "ArtifactSummary": _object(
        {
            "digest": {**_DIGEST, "description": "The OCI manifest digest."},
            "created": {"type": "string", "format": "date-time"},
            "created_source": _CREATED_SOURCE,
            "labels": _LABELS,
            "tags": {"type": "array", "items": {"type": "string"}},
            "title": {"type": "string"},
            "version": {"type": "string"},
            "size": {"type": "integer", "description": "Bytes of all files (layers)."},
            "file_count": {"type": "integer"},
            "media_type": {"type": "string"},
            "artifact_type": _NULLABLE_STRING,
            "subject": {"type": ["string", "null"], "description": "The subject's digest."},
        },
        description="An artifact as the index lists it.",
    ),
    "ArtifactList": _object(
        {
            "name": {"type": "string"},
            "artifacts": {"type": "array", "items": _ref("ArtifactSummary")},
            "cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last.",
            },
        }
    ),
    "DeleteResult": _object(
        {"name": {"type": "string"}, "deleted": {"type": "array", "items": _DIGEST}}
    ),
    "File": _object(
        {
            "path": {"type": "string"},
            "media_type": {"type": "string"},
            "size": {"type": "integer"},
            "sha256": _DIGEST,
            "blake3": _DIGEST,
        }
    ),
    "ArtifactRecord": _object(
        {
            "name": {"type": "string", "description": "The repository."},
            "digest": {**_DIGEST, "description": "The OCI manifest digest."},
            "media_type": {"type": "string"},
            "artifact_type": _NULLABLE_STRING,
            "manifest_size": {"type": "integer"},
            "document": _object(
                {"digest": _DIGEST, "size": {"type": "integer"}},
                description="The CBOR artifact view (application/vnd.arca.artifact.v1+cbor).",
            ),
            "tags": {"type": "array", "items": {"type": "string"}},
            "created": {"type": "string", "format": "date-time"},
            "created_source": _CREATED_SOURCE,
            "labels": {
                **_LABELS,
                "description": "The labels now: `pushed_labels` with every label artifact "
                'applied, newest last (docs/artifacts.md, "Labels after the push").',
            },
            "pushed_labels": {**_LABELS, "description": "The labels the artifact was pushed with."},
            "title": {"type": "string"},
            "version": {"type": "string"},
            "size": {"type": "integer"},
            "files": {"type": "array", "items": _ref("File")},
            "metadata": {"description": "Free metadata of the artifact (any JSON value)."},
            "subject": {
                "oneOf": [
                    {"type": "null"},
                    _object(
                        {
                            "media_type": {"type": "string"},
                            "digest": _DIGEST,
                            "size": {"type": "integer"},
                        }
                    ),
                ]
            },
        }
    ),
    "LabelChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "set": {**_LABELS, "description": "Labels to set (key to value)."},
            "remove": {"type": "array", "items": {"type": "string"}},
        },
    },
    "LabelResult": _object(
        {
            "name": {"type": "string"},
            "digest": {**_DIGEST, "description": "The labelled artifact (unchanged)."},
            "label_digest": {**_DIGEST, "description": "The label artifact recording it."},
            "labels": _LABELS,
        }
    ),
    "Hashes": _object(
        {
            "size": {"type": ["integer", "null"]},
            "sha256": {"type": ["string", "null"]},
            "blake3": {"type": ["string", "null"]},
        }
    ),
    "BlobCheck": _object(
        {
            "kind": {"type": "string", "enum": ["manifest", "config", "file"]},
            "path": _NULLABLE_STRING,
            "media_type": {"type": "string"},
            "digest": _DIGEST,
            "ok": {"type": "boolean"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "expected": _ref("Hashes"),
            "actual": {"oneOf": [{"type": "null"}, _ref("Hashes")]},
        }
    ),
    "GcObject": {
        "type": "object",
        "required": ["kind", "name", "digest", "path", "size", "rule"],
        "properties": {
            "kind": {"type": "string", "enum": ["revision", "layer", "blob"]},
            "name": _NULLABLE_STRING,
            "digest": _DIGEST,
            "path": {"type": "string"},
            "size": {"type": "integer"},
            "rule": {"type": "string", "description": "Why it was a candidate."},
            "reason": {"type": "string", "description": "Why a candidate was kept."},
            "trash_id": {"type": "string", "description": "Where it went (`arca trash`)."},
        },
    },
    "GcReport": _object(
        {
            "run_id": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "started": {"type": "number"},
            "finished": {"type": "number"},
            "grace_seconds": {"type": "integer"},
            "untagged": {"type": "string", "enum": ["keep", "delete"]},
            "swept": {"type": "array", "items": _ref("GcObject")},
            "kept": {"type": "array", "items": _ref("GcObject")},
            "live": {"type": "object", "additionalProperties": {"type": "integer"}},
            "bytes_swept": {"type": "integer"},
            "recovered": {"type": "integer"},
            "trash_purged": {"type": "integer"},
            "uploads_open": {"type": "integer"},
            "deferred": {"type": "integer"},
        }
    ),
    "Verification": _object(
        {
            "name": {"type": "string"},
            "digest": _DIGEST,
            "ok": {"type": "boolean"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "array", "items": _ref("BlobCheck")},
        }
    ),
}

SCHEMAS["DigestResolution"] = _object({"name": {"type": "string"}, "digest": _DIGEST})

PARAMETERS: dict[str, Any] = {
    "name": {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "Repository name; it may contain `/` (sent as is, not escaped).",
        "schema": {"type": "string"},
    },
    "reference": {
        "name": "reference",
        "in": "path",
        "required": True,
        "description": "A tag or a manifest digest.",
        "schema": {"type": "string"},
    },
    "since": {
        "name": "since",
        "in": "query",
        "description": "Only artifacts created at or after this RFC 3339 time (with an "
        "offset, e.g. `2026-06-01T00:00:00Z`). A range of the index: nothing older is read.",
        "schema": {"type": "string", "format": "date-time"},
    },
    "until": {
        "name": "until",
        "in": "query",
        "description": "Only artifacts created at or before this RFC 3339 time.",
        "schema": {"type": "string", "format": "date-time"},
    },
    "label": {
        "name": "label",
        "in": "query",
        "description": "`<key>=<value>`; repeatable, every one must match.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
}

SCHEMAS["CloudEvent"] = {
    "type": "object",
    "description": "One event, CloudEvents 1.0 JSON (docs/events.md).",
    "required": ["specversion", "id", "source", "type", "time", "subject", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "pattern": "^[0-9]{12}-[0-9]{4}$"},
        "source": {"type": "string"},
        "type": {"type": "string", "pattern": "^dev[.]arca[.]"},
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string"},
        "datacontenttype": {"const": "application/json"},
        "data": {
            "type": "object",
            "required": ["repository", "actor"],
            "properties": {"repository": {"type": "string"}, "actor": _NULLABLE_STRING},
        },
    },
}
SCHEMAS["EventPage"] = _object(
    {
        "events": {"type": "array", "items": _ref("CloudEvent")},
        "cursor": {
            **_NULLABLE_STRING,
            "description": "The last event examined; pass it as `after` to go on.",
        },
        "more": {"type": "boolean", "description": "The page stopped at `n` or the scan bound."},
    }
)
_WEBHOOK = {"name": "webhook", "in": "path", "required": True, "schema": {"type": "string"}}
_EVENT_FILTERS = [
    {
        "name": "type",
        "in": "query",
        "description": "Event types (`manifest.pushed`, …); repeatable or comma-separated.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
    {
        "name": "repository",
        "in": "query",
        "description": "Repository globs (`*` matches `/` too); repeatable.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
]
_AFTER = {
    "name": "after",
    "in": "query",
    "description": "An event id: start after it (default: the oldest event kept).",
    "schema": {"type": "string"},
}
EVENT_PATHS: dict[str, Any] = {
    "/api/v1/events": {
        "get": {
            "operationId": "listEvents",
            "summary": "Events in log order, after a cursor, filtered by type and repository.",
            "description": f"At most {EVENT_SCAN_LIMIT} events are examined per request; a page "
            "may then hold fewer than `n` and still have `more`.",
            "parameters": [
                _AFTER,
                {
                    "name": "n",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                },
                *_EVENT_FILTERS,
            ],
            "responses": {
                "200": {
                    **_json("EventPage", 'A page; `Link: <…>; rel="next"` when `more`.'),
                    "headers": {"Link": {"schema": {"type": "string"}}},
                },
                **_ERRORS,
            },
        }
    },
    "/api/v1/events/stream": {
        "get": {
            "operationId": "streamEvents",
            "summary": "Server-Sent Events: every event from `Last-Event-ID` (or `after`) on.",
            "parameters": [_AFTER, *_EVENT_FILTERS],
            "responses": {"200": {"description": "`text/event-stream`, one event per message."}},
        }
    },
    "/api/v1/events/webhooks": {
        "get": {
            "operationId": "listWebhooks",
            "summary": "Each webhook: its cursor, whether a replica delivers, dead letters.",
            "responses": {"200": {"description": '`{"webhooks": [...]}`'}},
        }
    },
    "/api/v1/events/webhooks/{webhook}/dead-letters": {
        "parameters": [_WEBHOOK],
        "get": {
            "operationId": "listDeadLetters",
            "summary": "Events the webhook gave up on, with the last error.",
            "responses": {"200": {"description": '`{"dead_letters": [...]}`'}, **_ERRORS},
        },
    },
    "/api/v1/events/webhooks/{webhook}/dead-letters/redeliver": {
        "parameters": [_WEBHOOK],
        "post": {
            "operationId": "redeliverDeadLetters",
            "summary": "Queue dead letters (all, or each `id` given) for delivery again.",
            "parameters": [
                {
                    "name": "id",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                    "style": "form",
                    "explode": True,
                }
            ],
            "responses": {"202": {"description": '`{"queued": [ids]}`'}, **_ERRORS},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/repositories/{name}/artifacts": {
        "parameters": [_NAME],
        "get": {
            "operationId": "listArtifacts",
            "summary": "The repository's artifacts, newest first, filtered by labels.",
            "description": "Order: creation time, newest first, then digest. Answered from "
            "the artifact index: at most one storage listing, one read per entry read "
            f"(never more than {SCAN_LIMIT}) and one per distinct tag on the page.",
            "parameters": [
                _LABEL,
                _SINCE,
                _UNTIL,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "default": DEFAULT_LIMIT,
                        "maximum": MAX_LIMIT,
                    },
                    "description": f"Most entries to return; more than {MAX_LIMIT} is capped.",
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "The `cursor` of the previous page.",
                },
            ],
            "responses": {
                "200": {
                    **_json("ArtifactList", 'A page; `Link: <…>; rel="next"` when more.'),
                    "headers": {"Link": {"schema": {"type": "string"}}},
                },
                **_ERRORS,
            },
        },
        "delete": {
            "operationId": "deleteArtifactsByLabel",
            "summary": "Delete every artifact carrying all the given labels.",
            "description": "Each is deleted as `DELETE /v2/<name>/manifests/<digest>` "
            "would: the manifest, its tags and its referrer entry. At least one label.",
            "parameters": [{**_LABEL, "required": True}, _SINCE, _UNTIL],
            "responses": {"200": _json("DeleteResult", "The digests deleted."), **_ERRORS},
        },
    },
    "/api/v1/repositories/{name}/-/latest": {
        "parameters": [_NAME],
        "get": {
            "operationId": "latestArtifact",
            "summary": "The newest artifact carrying all the given labels.",
            "description": "The same as `…/{name}/latest`, for every name: "
            "`…/{x}/artifacts/latest` is the record of the artifact tagged `latest` in "
            "`{x}`, not the latest of a repository `{x}/artifacts`.",
            "parameters": [_LABEL, _SINCE, _UNTIL],
            "responses": {
                "200": _json("ArtifactSummary", "The newest match."),
                **_ERRORS,
            },
        },
    },
    "/api/v1/repositories/{name}/latest": {
        "parameters": [_NAME],
        "get": {
            "operationId": "latestArtifactShort",
            "summary": "The newest artifact carrying all the given labels.",
            "description": "Not for a name ending in `/artifacts`, whose `…/artifacts/latest` "
            "path is an artifact record; `…/{name}/-/latest` works for every name.",
            "parameters": [_LABEL, _SINCE, _UNTIL],
            "responses": {
                "200": _json("ArtifactSummary", "The newest match."),
                **_ERRORS,
            },
        },
    },
    "/api/v1/repositories/{name}/artifacts/{reference}": {
        "parameters": [_NAME, _REFERENCE],
        "get": {
            "operationId": "getArtifact",
            "summary": "One artifact: tags, digests, labels, files, size, created time.",
            "responses": {"200": _json("ArtifactRecord", "The artifact."), **_ERRORS},
        },
    },
    "/api/v1/repositories/{name}/artifacts/{reference}/labels": {
        "parameters": [_NAME, _REFERENCE],
        "post": {
            "operationId": "labelArtifact",
            "summary": "Set or remove labels without changing the artifact's digest.",
            "description": "Pushes a label artifact (`application/vnd.arca.labels.v1+json`) "
            "whose subject is the artifact; listings, `latest` and records show the folded "
            "labels at once. Needs push. 403 `DENIED` over a quota.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("LabelChange")}},
            },
            "responses": {"201": _json("LabelResult", "The labels now."), **_ERRORS},
        },
    },
    "/api/v1/repositories/{name}/artifacts/{reference}/verify": {
        "parameters": [_NAME, _REFERENCE],
        "post": {
            "operationId": "verifyArtifact",
            "summary": "Re-hash every blob (sha256 and blake3) and report each result.",
            "description": "200 whatever the outcome; `ok` is false when any blob is "
            "missing or differs from what the artifact says.",
            "responses": {"200": _json("Verification", "The report."), **_ERRORS},
        },
    },
    "/api/v1/gc": {
        "post": {
            "operationId": "collectGarbage",
            "summary": "Run the garbage collector now; `dry_run=true` only reports.",
            "description": "Swept objects go to the trash (`arca trash ls`); the report "
            "lists every object swept and every candidate kept, with its reason "
            "(docs/gc.md). 503 `UNAVAILABLE` while another collector runs.",
            "parameters": [
                {
                    "name": "dry_run",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean", "default": False},
                }
            ],
            "responses": {"200": _json("GcReport", "The report of the run."), **_ERRORS},
        }
    },
    "/api/v1/repositories/{name}/-/digests/{prefix}": {
        "parameters": [
            _NAME,
            {
                "name": "prefix",
                "in": "path",
                "required": True,
                "description": "The first 4 to 64 hex digits of a sha256 manifest digest "
                "(`sha256:` optional), as `arca ls` prints 12 of them.",
                "schema": {"type": "string", "pattern": "^(?:sha256:)?[0-9a-f]{4,64}$"},
            },
        ],
        "get": {
            "operationId": "resolveDigestPrefix",
            "summary": "The one artifact whose manifest digest starts with the prefix.",
            "description": "`MANIFEST_UNKNOWN` (404) when none does; `UNSUPPORTED` (400) "
            "when more than one does (give more digits).",
            "responses": {"200": _json("DigestResolution", "The full digest."), **_ERRORS},
        },
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1 document."}},
        }
    },
}

SCHEMAS["RetentionPlan"] = embeddable(PLAN_SCHEMA)
SCHEMAS["RetentionReport"] = REPORT_SCHEMA
SCHEMAS["Pin"] = _object(
    {
        "name": {"type": "string"},
        "reference": {"type": "string", "description": "A tag, or a manifest digest."},
        "reason": {"type": "string"},
        "actor": _NULLABLE_STRING,
        "created": {"type": "number"},
    }
)
SCHEMAS["PinList"] = _object({"pins": {"type": "array", "items": _ref("Pin")}})
SCHEMAS["RepositoryPins"] = _object(
    {"name": {"type": "string"}, "pins": {"type": "array", "items": _ref("Pin")}}
)


def _flag(name: str, default: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "boolean", "default": default},
    }


_ADMIN_EVERYWHERE = "403 `DENIED` unless the caller is admin on every repository."
RETENTION_PATHS: dict[str, Any] = {
    "/api/v1/retention/plan": {
        "post": {
            "operationId": "planRetention",
            "summary": "Every artifact a policy governs: keep or delete, and every rule "
            "that decided it (docs/lifecycle.md). Writes nothing.",
            "description": _ADMIN_EVERYWHERE,
            "parameters": [
                {
                    "name": "repository",
                    "in": "query",
                    "required": False,
                    "description": "Only repositories matching this glob.",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {"200": _json("RetentionPlan", "The plan."), **_ERRORS},
        }
    },
    "/api/v1/retention/apply": {
        "post": {
            "operationId": "applyRetention",
            "summary": "Delete exactly a plan's deletions (the body; a fresh plan when "
            "empty), each re-checked; into the trash. A dry run unless `dry_run=false`.",
            "description": _ADMIN_EVERYWHERE + " 403 `DENIED` for an unsafe plan "
            "without `force=true`; 503 `UNAVAILABLE` while another apply runs.",
            "parameters": [
                _flag("dry_run", True, "Only report what an apply would do now."),
                _flag("force", False, "Apply a plan that is unsafe (max_delete_fraction)."),
            ],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("RetentionPlan")}},
            },
            "responses": {"200": _json("RetentionReport", "What was done."), **_ERRORS},
        }
    },
    "/api/v1/pins": {
        "get": {
            "operationId": "listPins",
            "summary": "Every pin of a repository the caller may pull.",
            "responses": {"200": _json("PinList", "The pins."), **_ERRORS},
        }
    },
    "/api/v1/repositories/{name}/-/pins": {
        "parameters": [_NAME],
        "get": {
            "operationId": "repositoryPins",
            "summary": "The pins of one repository.",
            "responses": {"200": _json("RepositoryPins", "The pins."), **_ERRORS},
        },
    },
    "/api/v1/repositories/{name}/-/pins/{reference}": {
        "parameters": [_NAME, _REFERENCE],
        "put": {
            "operationId": "pin",
            "summary": "Pin a manifest (by digest) or a tag (whatever it points at): "
            "retention and GC keep it above every rule. Needs admin on the repository.",
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"reason": {"type": "string", "maxLength": 1000}},
                        }
                    }
                },
            },
            "responses": {"201": _json("Pin", "The pin."), **_ERRORS},
        },
        "delete": {
            "operationId": "unpin",
            "summary": "Remove a pin (404 `MANIFEST_UNKNOWN` if there is none).",
            "responses": {"200": _json("Pin", "The pin removed."), **_ERRORS},
        },
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "arca control plane",
            "version": __version__,
            "description": "Artifact workflows over the OCI registry: list with label "
            "filters, latest, one record, verify, delete by label (docs/artifacts.md).",
        },
        "paths": {**PATHS, **EVENT_PATHS, **RETENTION_PATHS},
        "components": {"schemas": SCHEMAS, "parameters": PARAMETERS},
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


if __name__ == "__main__":
    print(json.dumps(document(), indent=2, ensure_ascii=False))
