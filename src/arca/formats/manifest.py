"""Parsing and validation of manifests received on PUT.

`parse_manifest(data, content_type)` turns the bytes of a PUT into a `Manifest` or
raises MANIFEST_INVALID saying what is wrong and where (a JSON path such as
`layers[0].digest`). It never raises anything else, whatever the input. The steps,
each documented rule by rule in docs/manifests.md:

1. the body is strict UTF-8 JSON: one object, no duplicate keys, no NaN/Infinity,
   no unpaired surrogates;
2. the media type is resolved from Content-Type and the body's `mediaType`
   (`resolve_media_type`), and must be one of `MANIFEST_MEDIA_TYPES`;
3. `schemaVersion` is 2, and the body is neither a manifest carrying `manifests`
   nor an index carrying `config`/`layers`;
4. the JSON Schema of that type (schemas/*.schema.json) holds;
5. descriptor digests use an algorithm arca verifies, and embedded `data` decodes
   to exactly the content its digest and size describe.

The bytes themselves are what the registry stores and serves; nothing here
re-serialises a manifest.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from arca.errors import DigestInvalid, ManifestInvalid
from arca.formats import mediatypes
from arca.formats.digest import Digest
from arca.formats.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_MEDIA_TYPES,
    GENERIC_CONTENT_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_ARTIFACT_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
)

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "Descriptor",
    "Manifest",
    "parse_manifest",
    "resolve_media_type",
]

_SCHEMA_FILES = {
    OCI_MANIFEST: "oci-image-manifest.schema.json",
    OCI_INDEX: "oci-image-index.schema.json",
    DOCKER_MANIFEST: "docker-manifest-v2.schema.json",
    DOCKER_MANIFEST_LIST: "docker-manifest-list.schema.json",
}

# Layers that clients fetch from their `urls`, never from the registry: distribution
# does not require them to exist in the repository, and neither does arca.
_FOREIGN_LAYER_MEDIA_TYPES = frozenset(
    {
        mediatypes.DOCKER_FOREIGN_LAYER,
        mediatypes.OCI_LAYER_NONDISTRIBUTABLE_TAR,
        mediatypes.OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        mediatypes.OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
    }
)

_SCHEMA1_MESSAGE = (
    "Docker schema 1 manifests are not supported; push a Docker schema 2 or OCI manifest"
)
_ACCEPTED = ", ".join(sorted(MANIFEST_MEDIA_TYPES))
# A `\uD8xx`-`\uDFxx` escape is the only way JSON text decodes to a surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor (image-spec descriptor.md), validated.

    `annotations` and `platform` are read-only views and take no part in hashing,
    so a descriptor can key a dict or live in a set.
    """

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    artifact_type: str | None = None
    platform: Mapping[str, Any] | None = field(default=None, hash=False)
    urls: tuple[str, ...] | None = None
    data: str | None = None

    @classmethod
    def from_json(cls, obj: object, *, where: str = "descriptor") -> Descriptor:
        """Validate a decoded descriptor object; MANIFEST_INVALID names `where`."""
        error = jsonschema.exceptions.best_match(_descriptor_validator().iter_errors(obj))
        if error is not None:
            raise _schema_error(error, where)
        assert isinstance(obj, dict)  # the schema says so
        return _build_descriptor(obj, where)

    def to_json(self) -> dict[str, Any]:
        """The descriptor in OCI field names; optional fields only when present."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls is not None:
            out["urls"] = list(self.urls)
        if self.annotations is not None:
            out["annotations"] = dict(self.annotations)
        if self.data is not None:
            out["data"] = self.data
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.platform is not None:
            out["platform"] = _thaw(self.platform)
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the registry needs to know of a validated manifest.

    `media_type` is the effective type (see `resolve_media_type`). `artifact_type`
    follows the distribution spec's referrers rule: for an image manifest its
    `artifactType`, else its config's media type; for an index its `artifactType`
    or None. `subject`, `artifact_type` from the body and `annotations` are read
    from OCI manifests only; the Docker formats define none of them.
    """

    media_type: str
    artifact_type: str | None
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config and layers: what must exist as blobs in the repository.

        Foreign/non-distributable layers that carry `urls` are left out: clients
        fetch them from those URLs, so they are not expected in the registry.
        """
        layers = tuple(
            layer
            for layer in self.layers
            if not (layer.media_type in _FOREIGN_LAYER_MEDIA_TYPES and layer.urls)
        )
        return layers if self.config is None else (self.config, *layers)

    @property
    def children(self) -> tuple[Descriptor, ...]:
        """The manifests an index refers to (empty for an image manifest)."""
        return self.manifests


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    """Validate the body of a manifest PUT; MANIFEST_INVALID says what is wrong."""
    header = mediatypes.normalize_content_type(content_type)
    if header in DOCKER_SCHEMA1_MEDIA_TYPES:
        raise ManifestInvalid(_SCHEMA1_MESSAGE, {"media_type": header})
    try:
        return _parse(data, header)
    except RecursionError:
        # Only pathological nesting gets here (json and jsonschema recurse).
        raise ManifestInvalid(
            "manifest is not valid JSON: nested too deeply", {"reason": "nesting"}
        ) from None


def resolve_media_type(body: Mapping[str, Any], content_type: str | None) -> str:
    """The media type a manifest body is validated as, from both places it can be said.

    - Content-Type is taken without parameters, lowercased; absent, blank,
      `application/json` and `application/octet-stream` count as not given.
    - Both given: they must be equal (the spec makes clients send the body's
      `mediaType` as Content-Type); a mismatch names both.
    - One given: that one.
    - Neither: detected from the shape, as distribution does: `manifests` without
      `config`/`layers` is an OCI index, `config`/`layers` without `manifests` an OCI
      image manifest. Docker types are never detected: their body must say them.
    The result must be one of `MANIFEST_MEDIA_TYPES`; Docker schema 1 and the
    withdrawn OCI artifact manifest get their own messages.
    """
    header = mediatypes.normalize_content_type(content_type)
    if header in GENERIC_CONTENT_TYPES:
        header = None
    declared = body.get("mediaType")
    if "mediaType" in body and not isinstance(declared, str):
        raise ManifestInvalid(
            f"manifest invalid at mediaType: must be a string, not {_json_type(declared)}",
            {"path": "mediaType"},
        )
    if header in DOCKER_SCHEMA1_MEDIA_TYPES or declared in DOCKER_SCHEMA1_MEDIA_TYPES:
        raise ManifestInvalid(_SCHEMA1_MESSAGE, {"media_type": header or declared})
    if declared is not None and header is not None and declared != header:
        raise ManifestInvalid(
            f"Content-Type {_clip(header)!r} does not match the manifest's mediaType "
            f"{_clip(declared)!r}; they must be the same",
            {"content_type": _clip(header), "media_type": _clip(declared)},
        )
    media_type = declared if declared is not None else header
    if media_type is None:
        media_type = _detect(body)
    if media_type == OCI_ARTIFACT_MANIFEST:
        raise ManifestInvalid(
            f"the OCI artifact manifest ({OCI_ARTIFACT_MANIFEST}) was withdrawn before "
            "image-spec v1.1.0; push an image manifest with an artifactType instead",
            {"media_type": media_type},
        )
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ManifestInvalid(
            f"unsupported manifest media type {_clip(media_type)!r}; accepted: {_ACCEPTED}",
            {"media_type": _clip(media_type), "accepted": sorted(MANIFEST_MEDIA_TYPES)},
        )
    return media_type


def _parse(data: bytes, header: str | None) -> Manifest:
    body = _load_json(data)
    media_type = resolve_media_type(body, header)
    _check_schema_version(body)
    _check_shape(body, media_type)
    error = jsonschema.exceptions.best_match(_validator(media_type).iter_errors(body))
    if error is not None:
        raise _schema_error(error, None)

    oci = media_type in (OCI_MANIFEST, OCI_INDEX)
    subject = _build_descriptor(body["subject"], "subject") if oci and "subject" in body else None
    annotations = _frozen_strings(body.get("annotations")) if oci else None
    declared_artifact_type = body.get("artifactType") if oci else None
    if declared_artifact_type is not None:
        _check_media_type(declared_artifact_type, "artifactType")

    if media_type in INDEX_MEDIA_TYPES:
        return Manifest(
            media_type=media_type,
            artifact_type=declared_artifact_type,
            config=None,
            layers=(),
            manifests=_build_all(body["manifests"], "manifests"),
            subject=subject,
            annotations=annotations,
        )
    config = _build_descriptor(body["config"], "config")
    return Manifest(
        media_type=media_type,
        artifact_type=declared_artifact_type or config.media_type,
        config=config,
        layers=_build_all(body["layers"], "layers"),
        manifests=(),
        subject=subject,
        annotations=annotations,
    )


class _Rejected(ValueError):
    """Raised from json.loads hooks for input that is JSON but not acceptable."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; refusing them means every reader of
    # the stored bytes sees the same manifest arca validated.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Rejected(f"duplicate key {_clip(key)!r}")
            seen.add(key)
    return obj


def _no_constants(name: str) -> Any:
    raise _Rejected(f"{name} is not a JSON number")


def _load_json(data: bytes) -> dict[str, Any]:
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestInvalid(
            f"manifest is not valid UTF-8: invalid byte at offset {exc.start}",
            {"position": exc.start},
        ) from None
    try:
        body = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        # Python's own hint for a BOM ("decode using utf-8-sig") means nothing to a client.
        reason = "unexpected byte order mark" if "BOM" in exc.msg else exc.msg
        raise ManifestInvalid(
            f"manifest is not valid JSON: {reason} at line {exc.lineno} column {exc.colno}",
            {"line": exc.lineno, "column": exc.colno, "position": exc.pos},
        ) from None
    except _Rejected as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    except ValueError:
        # The one other ValueError json raises: an integer past Python's digit limit.
        raise ManifestInvalid("manifest is not valid JSON: a number has too many digits") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ManifestInvalid(
                "manifest is not valid JSON: a string contains an unpaired UTF-16 surrogate"
            ) from None
    if not isinstance(body, dict):
        raise ManifestInvalid(
            f"manifest must be a JSON object, not {_json_type(body)}", {"path": ""}
        )
    return body


def _detect(body: Mapping[str, Any]) -> str:
    is_image = "config" in body or "layers" in body
    is_index = "manifests" in body
    if body.get("schemaVersion") == 1 and type(body.get("schemaVersion")) is int:
        raise ManifestInvalid(_SCHEMA1_MESSAGE, {"path": "schemaVersion"})
    if is_image and is_index:
        raise ManifestInvalid(
            "cannot tell the manifest type: the body has both 'manifests' and "
            "'config'/'layers' and no mediaType; a manifest is one or the other"
        )
    if is_index:
        return OCI_INDEX
    if is_image:
        return OCI_MANIFEST
    raise ManifestInvalid(
        "cannot tell the manifest type: no mediaType in the body, no Content-Type, and "
        "neither 'config'/'layers' nor 'manifests'",
        {"accepted": sorted(MANIFEST_MEDIA_TYPES)},
    )


def _check_schema_version(body: Mapping[str, Any]) -> None:
    if "schemaVersion" not in body:
        raise ManifestInvalid(
            "manifest invalid: 'schemaVersion' is required", {"path": "schemaVersion"}
        )
    version = body["schemaVersion"]
    if type(version) is int and version == 2:
        return
    hint = f" ({_SCHEMA1_MESSAGE})" if type(version) is int and version == 1 else ""
    raise ManifestInvalid(
        f"manifest invalid at schemaVersion: must be 2, not {_describe_value(version)}{hint}",
        {"path": "schemaVersion"},
    )


def _check_shape(body: Mapping[str, Any], media_type: str) -> None:
    # The image-spec forbids these so that one document cannot be read as both an
    # image manifest and an index (CVE-2021-41190).
    if media_type in INDEX_MEDIA_TYPES:
        for key in ("config", "layers"):
            if key in body:
                raise ManifestInvalid(
                    f"manifest invalid at {key}: an index ({media_type}) must not contain {key!r}",
                    {"path": key, "media_type": media_type},
                )
    elif "manifests" in body:
        raise ManifestInvalid(
            f"manifest invalid at manifests: an image manifest ({media_type}) must not "
            "contain 'manifests'",
            {"path": "manifests", "media_type": media_type},
        )


def _build_all(items: Iterable[Any], where: str) -> tuple[Descriptor, ...]:
    return tuple(_build_descriptor(item, f"{where}[{i}]") for i, item in enumerate(items))


def _build_descriptor(obj: Mapping[str, Any], where: str) -> Descriptor:
    """A Descriptor from an object the schema has accepted, plus the semantic checks."""
    media_type = obj["mediaType"]
    _check_media_type(media_type, f"{where}.mediaType")
    digest = _parse_digest(obj["digest"], f"{where}.digest")
    size: int = obj["size"]
    artifact_type = obj.get("artifactType")
    if artifact_type is not None:
        _check_media_type(artifact_type, f"{where}.artifactType")
    data = obj.get("data")
    if data is not None:
        _check_data(data, digest, size, f"{where}.data")
    urls = obj.get("urls")
    platform = obj.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_frozen_strings(obj.get("annotations")),
        artifact_type=artifact_type,
        platform=None if platform is None else _freeze(platform),
        urls=None if urls is None else tuple(urls),
        data=data,
    )


def _check_media_type(value: str, where: str) -> None:
    # The schema's pattern ends in `$`, which Python's re lets match before a final
    # newline; fullmatch closes that gap.
    if not mediatypes.is_media_type(value):
        raise ManifestInvalid(
            f"manifest invalid at {where}: {_describe_value(value)} is not a valid media type",
            {"path": where},
        )


def _parse_digest(value: str, where: str) -> Digest:
    try:
        if "\n" in value:  # Digest.parse's `$` would let a final newline through
            raise DigestInvalid(f"invalid digest {_clip(value)!r}")
        return Digest.parse(value)
    except DigestInvalid as exc:
        raise ManifestInvalid(
            f"manifest invalid at {where}: {exc.message}",
            {"path": where, "digest": _clip(value)},
        ) from None


def _check_data(data: str, digest: Digest, size: int, where: str) -> None:
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ManifestInvalid(
            f"manifest invalid at {where}: not valid base64", {"path": where}
        ) from None
    if len(content) != size:
        raise ManifestInvalid(
            f"manifest invalid at {where}: decodes to {len(content)} bytes but the "
            f"descriptor's size is {size}",
            {"path": where},
        )
    actual = Digest.of(content, digest.algorithm)
    if actual != digest:
        raise ManifestInvalid(
            f"manifest invalid at {where}: decodes to content of digest {actual}, not {digest}",
            {"path": where, "digest": str(digest)},
        )


def _frozen_strings(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    return None if value is None else MappingProxyType(dict(value))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


# --- JSON Schema -----------------------------------------------------------------


def _is_strict_integer(checker: object, instance: object) -> bool:
    # JSON Schema calls 2.0 an integer; Go's int64 (and so every other registry and
    # client) refuses it, so arca does too.
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", _is_strict_integer
    ),
)


def _load_schema(name: str) -> dict[str, Any]:
    text = resources.files("arca.formats").joinpath("schemas", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _inline_refs(node: Any, definitions: Mapping[str, Any]) -> Any:
    """The schema with every local `{"$ref": "#/$defs/x"}` replaced by `x` itself.

    The shipped schemas keep their `$defs` readable; resolving a `$ref` costs
    jsonschema more than checking what it points to, so the validators run on this
    expanded copy (the schemas have no recursive definitions). Same rules, and the
    same instance paths in errors, at under half the cost.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline_refs(v, definitions) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    return node


def _compile(schema: dict[str, Any], definition: str | None = None) -> Any:
    """A validator for `schema`, or for one of its `$defs` when `definition` is given."""
    _Validator.check_schema(schema)
    definitions = schema.get("$defs", {})
    root = schema if definition is None else definitions[definition]
    return _Validator({"$schema": schema["$schema"], **_inline_refs(root, definitions)})


@functools.cache
def _validator(media_type: str) -> Any:
    """The compiled validator for a manifest media type, built once per process."""
    return _compile(_load_schema(_SCHEMA_FILES[media_type]))


@functools.cache
def _descriptor_validator() -> Any:
    return _compile(_load_schema(_SCHEMA_FILES[OCI_MANIFEST]), "descriptor")


def _schema_error(error: jsonschema.exceptions.ValidationError, where: str | None) -> Exception:
    path = _json_path(error.absolute_path, where)
    at = f" at {path}" if path else ""
    return ManifestInvalid(f"manifest invalid{at}: {_explain(error)}", {"path": path})


def _json_path(parts: Iterable[str | int], where: str | None) -> str:
    path = where or ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(_clip(part))}]"
    return path


def _explain(error: jsonschema.exceptions.ValidationError) -> str:
    keyword = error.validator
    expected = error.validator_value
    instance = error.instance
    if keyword == "required":
        missing = [name for name in expected if name not in instance]
        return f"{(missing or expected)[0]!r} is required"
    if keyword == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return f"must be {_article(wanted)} {wanted}, not {_json_type(instance)}"
    if keyword == "pattern":
        title = error.schema.get("title", "value") if isinstance(error.schema, dict) else "value"
        return f"{_describe_value(instance)} is not a valid {title}"
    if keyword == "const":
        return f"must be {json.dumps(expected)}, not {_describe_value(instance)}"
    if keyword == "minimum":
        return f"must be at least {expected}, not {_describe_value(instance)}"
    if keyword == "maximum":
        return f"must be at most {expected}, not {_describe_value(instance)}"
    if keyword is None or keyword is False:  # a `false` schema: the key is forbidden
        return "not allowed here"
    return _clip(error.message)


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _describe_value(value: object) -> str:
    """A short rendering of a JSON value for a message: scalars shown, others named."""
    if isinstance(value, str):
        return repr(_clip(value, 100))
    if value is None or isinstance(value, bool | int | float):
        return _clip(json.dumps(value), 100)
    return _json_type(value)


def _clip(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
