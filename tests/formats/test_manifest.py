from __future__ import annotations

import base64
import copy
import hashlib
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arca.errors import ErrorCode, ManifestInvalid
from arca.formats import manifest as manifest_module
from arca.formats import mediatypes as mt
from arca.formats.digest import Digest
from arca.formats.manifest import (
    MANIFEST_MEDIA_TYPES,
    Descriptor,
    Manifest,
    parse_manifest,
    resolve_media_type,
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG: dict[str, Any] = {"mediaType": mt.OCI_CONFIG, "digest": sha256(b"config"), "size": 6}
EMPTY = {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_JSON_DIGEST, "size": 2}
LAYER: dict[str, Any] = {"mediaType": mt.OCI_LAYER_TAR_GZIP, "digest": sha256(b"layer"), "size": 5}
LAYER2: dict[str, Any] = {
    "mediaType": mt.OCI_LAYER_TAR_GZIP,
    "digest": sha256(b"layer2"),
    "size": 6,
}
SUBJECT: dict[str, Any] = {"mediaType": mt.OCI_MANIFEST, "digest": sha256(b"subject"), "size": 7}
CHILD_AMD64: dict[str, Any] = {
    "mediaType": mt.OCI_MANIFEST,
    "digest": sha256(b"amd64"),
    "size": 5,
    "platform": {"architecture": "amd64", "os": "linux"},
}
CHILD_ARM: dict[str, Any] = {
    "mediaType": mt.OCI_MANIFEST,
    "digest": sha256(b"arm"),
    "size": 3,
    "platform": {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
        "os.features": ["f"],
        "features": ["neon"],
    },
}


def oci_manifest(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": copy.deepcopy(CONFIG),
        "layers": [copy.deepcopy(LAYER)],
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def oci_index(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [copy.deepcopy(CHILD_AMD64), copy.deepcopy(CHILD_ARM)],
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def docker_manifest(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "digest": sha256(b"c"), "size": 1},
        "layers": [{"mediaType": mt.DOCKER_LAYER, "digest": sha256(b"l"), "size": 1}],
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def docker_list(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": mt.DOCKER_MANIFEST,
                "digest": sha256(b"d"),
                "size": 1,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


def with_layer(**fields: Any) -> dict[str, Any]:
    return oci_manifest(layers=[{**LAYER, **fields}])


def without(body: dict[str, Any], *path: str | int) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


# --- valid manifests -------------------------------------------------------------

VALID = [
    pytest.param(oci_manifest(), mt.OCI_MANIFEST, mt.OCI_MANIFEST, id="oci-manifest"),
    pytest.param(oci_manifest(), None, mt.OCI_MANIFEST, id="oci-manifest-no-content-type"),
    pytest.param(
        oci_manifest(mediaType=None), mt.OCI_MANIFEST, mt.OCI_MANIFEST, id="oci-no-mediatype"
    ),
    pytest.param(oci_manifest(mediaType=None), None, mt.OCI_MANIFEST, id="oci-detected"),
    pytest.param(
        oci_manifest(mediaType=None),
        "application/json",
        mt.OCI_MANIFEST,
        id="oci-detected-generic-content-type",
    ),
    pytest.param(
        oci_manifest(), "application/octet-stream", mt.OCI_MANIFEST, id="oci-generic-type"
    ),
    pytest.param(
        oci_manifest(),
        "Application/VND.OCI.image.manifest.v1+JSON ; charset=utf-8",
        mt.OCI_MANIFEST,
        id="content-type-parameters-and-case",
    ),
    pytest.param(oci_manifest(layers=[]), None, mt.OCI_MANIFEST, id="oci-no-layers"),
    pytest.param(
        oci_manifest(
            artifactType="application/vnd.example.sbom.v1",
            config={**EMPTY, "data": mt.EMPTY_JSON_DATA},
            layers=[{**EMPTY}],
            subject=SUBJECT,
            annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        ),
        mt.OCI_MANIFEST,
        mt.OCI_MANIFEST,
        id="oci-artifact-with-subject",
    ),
    pytest.param(
        oci_manifest(layers=[{**LAYER, "mediaType": "application/x.unknown-to-arca"}]),
        None,
        mt.OCI_MANIFEST,
        id="unknown-layer-media-type-ignored",
    ),
    pytest.param(
        oci_manifest(layers=[{**LAYER, "digest": "sha512:" + "a" * 128}]),
        None,
        mt.OCI_MANIFEST,
        id="sha512-digest",
    ),
    pytest.param(
        oci_manifest(layers=[{**LAYER, "digest": "blake3:" + "a" * 64}]),
        None,
        mt.OCI_MANIFEST,
        id="blake3-digest",
    ),
    pytest.param(
        oci_manifest(layers=[{**LAYER, "size": 0}, {**LAYER2, "size": 2**63 - 1}]),
        None,
        mt.OCI_MANIFEST,
        id="size-bounds",
    ),
    pytest.param(
        oci_manifest(extension={"anything": [1, 2, {"x": None}]}, layers=[{**LAYER, "x": 1}]),
        None,
        mt.OCI_MANIFEST,
        id="unknown-fields-ignored",
    ),
    pytest.param(oci_index(), mt.OCI_INDEX, mt.OCI_INDEX, id="oci-index"),
    pytest.param(oci_index(mediaType=None), None, mt.OCI_INDEX, id="oci-index-detected"),
    pytest.param(oci_index(manifests=[]), None, mt.OCI_INDEX, id="oci-index-empty"),
    pytest.param(
        oci_index(
            manifests=[{**CHILD_AMD64, "mediaType": mt.OCI_INDEX}, {**LAYER}],
            artifactType="application/vnd.example.bundle",
            subject=SUBJECT,
        ),
        None,
        mt.OCI_INDEX,
        id="oci-index-nested-artifact",
    ),
    pytest.param(docker_manifest(), mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST, id="docker"),
    pytest.param(docker_manifest(), None, mt.DOCKER_MANIFEST, id="docker-no-content-type"),
    pytest.param(docker_list(), mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_LIST, id="list"),
    pytest.param(
        docker_list(
            manifests=[
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": sha256(b"x"),
                    "size": 1,
                    "platform": {
                        "architecture": "amd64",
                        "os": "windows",
                        "os.version": "10.0.14393.1066",
                        "os.features": ["win32k"],
                    },
                },
                {"mediaType": mt.DOCKER_MANIFEST, "digest": sha256(b"y"), "size": 1},
            ]
        ),
        None,
        mt.DOCKER_MANIFEST_LIST,
        id="list-windows-and-no-platform",
    ),
    pytest.param(
        docker_manifest(
            layers=[
                {
                    "mediaType": mt.DOCKER_FOREIGN_LAYER,
                    "digest": sha256(b"f"),
                    "size": 1,
                    "urls": ["https://example.com/layer"],
                }
            ]
        ),
        None,
        mt.DOCKER_MANIFEST,
        id="docker-foreign-layer",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "media_type"), VALID)
def test_valid_manifests_parse(
    body: dict[str, Any], content_type: str | None, media_type: str
) -> None:
    manifest = parse_manifest(encode(body), content_type)
    assert isinstance(manifest, Manifest)
    assert manifest.media_type == media_type


def test_pretty_printed_and_compact_bodies_parse_the_same() -> None:
    body = oci_manifest()
    pretty = parse_manifest(json.dumps(body, indent=3).encode(), None)
    compact = parse_manifest(json.dumps(body, separators=(",", ":")).encode(), None)
    assert pretty == compact


def test_image_manifest_fields() -> None:
    manifest = parse_manifest(
        encode(oci_manifest(layers=[LAYER, LAYER2], annotations={"k": "v"})), mt.OCI_MANIFEST
    )
    assert manifest.config == Descriptor(mt.OCI_CONFIG, Digest.parse(CONFIG["digest"]), 6)
    assert [str(layer.digest) for layer in manifest.layers] == [LAYER["digest"], LAYER2["digest"]]
    assert manifest.manifests == ()
    assert manifest.children == ()
    assert manifest.subject is None
    assert manifest.annotations == {"k": "v"}
    assert not manifest.is_index
    assert manifest.blobs == (manifest.config, *manifest.layers)


def test_index_children_are_its_manifests() -> None:
    manifest = parse_manifest(encode(oci_index()), None)
    assert manifest.is_index
    assert manifest.config is None
    assert manifest.layers == ()
    assert manifest.blobs == ()
    assert [str(child.digest) for child in manifest.children] == [
        CHILD_AMD64["digest"],
        CHILD_ARM["digest"],
    ]
    assert manifest.children[0].platform == {"architecture": "amd64", "os": "linux"}
    assert manifest.children[1].platform is not None
    assert manifest.children[1].platform["os.features"] == ("f",)
    assert manifest.children[1].to_json() == CHILD_ARM


def test_docker_list_children() -> None:
    manifest = parse_manifest(encode(docker_list()), mt.DOCKER_MANIFEST_LIST)
    assert manifest.is_index
    assert len(manifest.children) == 1
    assert manifest.children[0].media_type == mt.DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("body", "artifact_type"),
    [
        pytest.param(oci_manifest(), mt.OCI_CONFIG, id="manifest-falls-back-to-config"),
        pytest.param(
            oci_manifest(artifactType="application/vnd.example.sig", config=EMPTY),
            "application/vnd.example.sig",
            id="manifest-artifact-type",
        ),
        pytest.param(
            oci_manifest(config=EMPTY), mt.OCI_EMPTY, id="empty-config-without-artifact-type"
        ),
        pytest.param(
            oci_manifest(config={**CONFIG, "mediaType": "application/vnd.example.config"}),
            "application/vnd.example.config",
            id="config-based-artifact",
        ),
        pytest.param(oci_index(), None, id="index-without-artifact-type"),
        pytest.param(
            oci_index(artifactType="application/vnd.example.bundle"),
            "application/vnd.example.bundle",
            id="index-artifact-type",
        ),
        pytest.param(docker_manifest(), mt.DOCKER_CONFIG, id="docker-config"),
        pytest.param(docker_list(), None, id="docker-list"),
    ],
)
def test_artifact_type_follows_the_referrers_rules(
    body: dict[str, Any], artifact_type: str | None
) -> None:
    assert parse_manifest(encode(body), None).artifact_type == artifact_type


@pytest.mark.parametrize("make", [oci_manifest, oci_index])
def test_subject_is_extracted(make: Any) -> None:
    manifest = parse_manifest(encode(make(subject=SUBJECT)), None)
    assert manifest.subject == Descriptor(mt.OCI_MANIFEST, Digest.parse(SUBJECT["digest"]), 7)


def test_docker_formats_carry_no_subject_or_annotations() -> None:
    body = docker_manifest(subject=SUBJECT, annotations={"a": "b"}, artifactType="x/y")
    manifest = parse_manifest(encode(body), None)
    assert manifest.subject is None
    assert manifest.annotations is None
    assert manifest.artifact_type == mt.DOCKER_CONFIG


def test_foreign_layers_with_urls_are_not_required_blobs() -> None:
    foreign = {
        "mediaType": mt.OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        "digest": sha256(b"win"),
        "size": 3,
        "urls": ["https://example.com/win"],
    }
    foreign_without_urls = {**foreign, "digest": sha256(b"win2")}
    del foreign_without_urls["urls"]
    manifest = parse_manifest(encode(oci_manifest(layers=[foreign, foreign_without_urls])), None)
    assert [str(blob.digest) for blob in manifest.blobs] == [
        CONFIG["digest"],
        foreign_without_urls["digest"],
    ]
    assert manifest.layers[0].urls == ("https://example.com/win",)


def test_embedded_data_matching_its_descriptor_is_accepted() -> None:
    content = b'{"hello": "world"}'
    layer = {
        "mediaType": "application/json",
        "digest": sha256(content),
        "size": len(content),
        "data": base64.b64encode(content).decode(),
    }
    manifest = parse_manifest(encode(oci_manifest(layers=[layer])), None)
    assert manifest.layers[0].data == layer["data"]


# --- invalid manifests -----------------------------------------------------------

INVALID = [
    # JSON itself
    pytest.param(b"", None, "manifest is not valid JSON: Expecting value at line 1 column 1"),
    pytest.param(b"{", None, "manifest is not valid JSON"),
    pytest.param(b'{"a": 1,}', None, "line 1 column 9"),
    pytest.param(b'{\n  "a": tru\n}', None, "at line 2 column 8"),
    pytest.param(b"\xff\xfe{}", None, "manifest is not valid UTF-8: invalid byte at offset 0"),
    pytest.param(b'{"a": "\xc3"}', None, "not valid UTF-8: invalid byte at offset 7"),
    pytest.param(b"\xef\xbb\xbf{}", None, "unexpected byte order mark at line 1 column 1"),
    pytest.param('{"a": 1}'.encode("utf-16"), None, "not valid UTF-8"),
    pytest.param(b"[]", None, "manifest must be a JSON object, not an array"),
    pytest.param(b'"manifest"', None, "manifest must be a JSON object, not a string"),
    pytest.param(b"null", None, "manifest must be a JSON object, not null"),
    pytest.param(b"2", None, "manifest must be a JSON object, not an integer"),
    pytest.param(b"{} {}", None, "Extra data"),
    pytest.param(
        b'{"schemaVersion": 2, "layers": [], "layers": []}', None, "duplicate key 'layers'"
    ),
    pytest.param(b'{"a": {"b": 1, "b": 2}}', None, "duplicate key 'b'"),
    pytest.param(encode(oci_manifest())[:-1] + b', "x": NaN}', None, "NaN is not a JSON number"),
    pytest.param(b'{"size": -Infinity}', None, "-Infinity is not a JSON number"),
    pytest.param(
        encode(oci_manifest(annotations={"k": "\ud800"})), None, "unpaired UTF-16 surrogate"
    ),
    pytest.param(b'{"size": 1' + b"0" * 5000 + b"}", None, "a number has too many digits"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, None, "manifest is not valid JSON"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, None, "manifest is not valid JSON"),
    # media type resolution
    pytest.param(
        encode(oci_manifest()),
        mt.OCI_INDEX,
        f"Content-Type '{mt.OCI_INDEX}' does not match the manifest's mediaType "
        f"'{mt.OCI_MANIFEST}'",
    ),
    pytest.param(
        encode(oci_manifest()),
        mt.DOCKER_MANIFEST,
        f"'{mt.DOCKER_MANIFEST}' does not match the manifest's mediaType '{mt.OCI_MANIFEST}'",
    ),
    pytest.param(
        encode(oci_manifest()),
        "application/vnd.example+json",
        "Content-Type 'application/vnd.example+json' does not match",
    ),
    pytest.param(
        encode(oci_manifest(mediaType="application/vnd.oci.image.manifest.v1+JSON")),
        mt.OCI_MANIFEST,
        "does not match the manifest's mediaType",
    ),
    pytest.param(
        encode(oci_manifest(mediaType=None)),
        "application/vnd.example+json",
        "unsupported manifest media type 'application/vnd.example+json'; accepted: "
        + ", ".join(sorted(MANIFEST_MEDIA_TYPES)),
    ),
    pytest.param(
        encode(oci_manifest(mediaType="application/vnd.example+json")),
        None,
        "unsupported manifest media type 'application/vnd.example+json'",
    ),
    pytest.param(encode(oci_manifest(mediaType="")), None, "unsupported manifest media type ''"),
    pytest.param(
        encode(oci_manifest(mediaType=7)), None, "at mediaType: must be a string, not an integer"
    ),
    pytest.param(b"{}", mt.DOCKER_SCHEMA1_SIGNED_MANIFEST, "Docker schema 1 manifests are not"),
    pytest.param(b"not even json", mt.DOCKER_SCHEMA1_MANIFEST, "schema 1 manifests are not"),
    pytest.param(
        b'{"schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": []}',
        None,
        "Docker schema 1 manifests are not supported",
    ),
    pytest.param(
        encode({"schemaVersion": 1, "mediaType": mt.DOCKER_SCHEMA1_MANIFEST}),
        None,
        "schema 1 manifests are not supported",
    ),
    pytest.param(
        encode({"schemaVersion": 2, "mediaType": mt.OCI_ARTIFACT_MANIFEST, "blobs": []}),
        None,
        "withdrawn before image-spec v1.1.0",
    ),
    pytest.param(b'{"schemaVersion": 2}', None, "cannot tell the manifest type"),
    pytest.param(
        encode({"schemaVersion": 2, "manifests": [], "layers": []}),
        None,
        "both 'manifests' and 'config'/'layers'",
    ),
    # shape and schemaVersion
    pytest.param(
        encode(oci_manifest(manifests=[])),
        None,
        "at manifests: an image manifest (application/vnd.oci.image.manifest.v1+json) "
        "must not contain 'manifests'",
    ),
    pytest.param(
        encode(oci_index(layers=[])), None, "at layers: an index (application/vnd.oci.image"
    ),
    pytest.param(encode(oci_index(config=CONFIG)), mt.OCI_INDEX, "must not contain 'config'"),
    pytest.param(encode(docker_list(config=CONFIG)), None, "must not contain 'config'"),
    pytest.param(encode(docker_manifest(manifests=[])), None, "must not contain 'manifests'"),
    pytest.param(
        encode(without(oci_manifest(), "schemaVersion")), None, "'schemaVersion' is required"
    ),
    pytest.param(encode(oci_manifest(schemaVersion=3)), None, "must be 2, not 3"),
    pytest.param(encode(oci_manifest(schemaVersion="2")), None, "must be 2, not '2'"),
    pytest.param(encode(oci_manifest(schemaVersion=2.0)), None, "must be 2, not 2.0"),
    pytest.param(encode(oci_manifest(schemaVersion=True)), None, "must be 2, not true"),
    pytest.param(encode(oci_manifest(schemaVersion=1)), None, "must be 2, not 1 (Docker schema 1"),
    # image manifest schema
    pytest.param(encode(without(oci_manifest(), "config")), None, "manifest invalid: 'config'"),
    pytest.param(
        encode(without(oci_manifest(), "layers")),
        mt.OCI_MANIFEST,
        "manifest invalid: 'layers' is required",
    ),
    pytest.param(
        encode(oci_manifest(layers={})), None, "at layers: must be an array, not an object"
    ),
    pytest.param(
        encode(oci_manifest(config=[])), None, "at config: must be an object, not an array"
    ),
    pytest.param(
        encode(oci_manifest(layers=[None])), None, "at layers[0]: must be an object, not null"
    ),
    pytest.param(
        encode(without(oci_manifest(), "layers", 0, "digest")),
        None,
        "manifest invalid at layers[0]: 'digest' is required",
    ),
    pytest.param(
        encode(without(oci_manifest(), "config", "mediaType")),
        None,
        "at config: 'mediaType' is required",
    ),
    pytest.param(
        encode(without(oci_manifest(), "config", "size")), None, "at config: 'size' is required"
    ),
    pytest.param(
        encode(with_layer(digest="nope")),
        None,
        "manifest invalid at layers[0].digest: 'nope' is not a valid digest",
    ),
    pytest.param(
        encode(oci_manifest(config={**CONFIG, "digest": "md5:" + "0" * 32})),
        None,
        "at config.digest: unsupported digest algorithm 'md5'",
    ),
    pytest.param(
        encode(with_layer(digest="sha256:" + "a" * 63)),
        None,
        "at layers[0].digest: invalid sha256 digest: expected 64 lowercase hex",
    ),
    pytest.param(
        encode(with_layer(digest="sha256:" + "A" * 64)), None, "at layers[0].digest: invalid"
    ),
    pytest.param(
        encode(with_layer(digest="sha512:" + "a" * 64)), None, "expected 128 lowercase hex"
    ),
    pytest.param(
        encode(with_layer(digest="sha256:" + "a" * 63 + "\n")), None, "at layers[0].digest"
    ),
    pytest.param(encode(with_layer(digest=5)), None, "at layers[0].digest: must be a string"),
    pytest.param(
        encode(with_layer(size=-1)), None, "at layers[0].size: must be at least 0, not -1"
    ),
    pytest.param(
        encode(with_layer(size=2**63)),
        None,
        "at layers[0].size: must be at most 9223372036854775807",
    ),
    pytest.param(
        encode(with_layer(size=5.0)), None, "at layers[0].size: must be an integer, not a"
    ),
    pytest.param(encode(with_layer(size=1e3)), None, "must be an integer, not a number"),
    pytest.param(encode(with_layer(size="5")), None, "must be an integer, not a string"),
    pytest.param(encode(with_layer(size=True)), None, "must be an integer, not a boolean"),
    pytest.param(encode(with_layer(size=None)), None, "must be an integer, not null"),
    pytest.param(
        encode(with_layer(mediaType="tar")),
        None,
        "at layers[0].mediaType: 'tar' is not a valid media type",
    ),
    pytest.param(
        encode(with_layer(mediaType="application/tar; q=1")), None, "is not a valid media type"
    ),
    pytest.param(
        encode(with_layer(mediaType="application/tar\n")),
        None,
        "at layers[0].mediaType: 'application/tar\\n' is not a valid media type",
    ),
    pytest.param(encode(with_layer(mediaType="")), None, "'' is not a valid media type"),
    pytest.param(
        encode(oci_manifest(artifactType="sbom")),
        None,
        "at artifactType: 'sbom' is not a valid media type",
    ),
    pytest.param(
        encode(oci_manifest(artifactType="a/b\n")), None, "at artifactType: 'a/b\\n' is not"
    ),
    pytest.param(
        encode(with_layer(artifactType="x")), None, "at layers[0].artifactType: 'x' is not"
    ),
    pytest.param(
        encode(oci_manifest(annotations={"com.example.key": 1})),
        None,
        'at annotations["com.example.key"]: must be a string, not an integer',
    ),
    pytest.param(
        encode(oci_manifest(annotations=["a"])), None, "at annotations: must be an object"
    ),
    pytest.param(
        encode(with_layer(annotations={"k": None})), None, "at layers[0].annotations.k: must be"
    ),
    pytest.param(encode(with_layer(urls="https://x")), None, "at layers[0].urls: must be an array"),
    pytest.param(encode(with_layer(urls=[1])), None, "at layers[0].urls[0]: must be a string"),
    pytest.param(
        encode(oci_manifest(subject={**SUBJECT, "digest": "sha256"})),
        None,
        "at subject.digest: 'sha256' is not a valid digest",
    ),
    pytest.param(
        encode(oci_manifest(subject="sha256:" + "a" * 64)),
        None,
        "at subject: must be an object, not a string",
    ),
    pytest.param(encode(with_layer(data="!!!")), None, "at layers[0].data: '!!!' is not a valid"),
    pytest.param(encode(with_layer(data="e30")), None, "at layers[0].data"),
    pytest.param(
        encode(oci_manifest(config={**EMPTY, "size": 3, "data": mt.EMPTY_JSON_DATA})),
        None,
        "at config.data: decodes to 2 bytes but the descriptor's size is 3",
    ),
    pytest.param(
        encode(oci_manifest(config={**CONFIG, "size": 2, "data": mt.EMPTY_JSON_DATA})),
        None,
        f"at config.data: decodes to content of digest {mt.EMPTY_JSON_DIGEST}, not",
    ),
    # index schema
    pytest.param(
        encode(without(oci_index(mediaType=None), "manifests")),
        None,
        "cannot tell the manifest type",
    ),
    pytest.param(
        encode(without(oci_index(), "manifests")),
        None,
        "manifest invalid: 'manifests' is required",
    ),
    pytest.param(
        encode(without(oci_index(mediaType=None), "manifests")),
        mt.OCI_INDEX,
        "manifest invalid: 'manifests' is required",
    ),
    pytest.param(encode(oci_index(manifests={})), None, "at manifests: must be an array"),
    pytest.param(
        encode(oci_index(manifests=[{**CHILD_AMD64, "platform": {"architecture": "amd64"}}])),
        None,
        "at manifests[0].platform: 'os' is required",
    ),
    pytest.param(
        encode(oci_index(manifests=[{**CHILD_AMD64, "platform": {"os": "linux"}}])),
        None,
        "at manifests[0].platform: 'architecture' is required",
    ),
    pytest.param(
        encode(
            oci_index(
                manifests=[
                    CHILD_AMD64,
                    {**CHILD_ARM, "platform": {**CHILD_ARM["platform"], "os.features": "x"}},
                ]
            )
        ),
        None,
        'at manifests[1].platform["os.features"]: must be an array, not a string',
    ),
    pytest.param(
        encode(oci_index(manifests=[{**CHILD_AMD64, "digest": "sha256:" + "0" * 65}])),
        None,
        "at manifests[0].digest: invalid sha256 digest",
    ),
    pytest.param(encode(oci_index(artifactType=7)), None, "at artifactType: must be a string"),
    pytest.param(
        encode(oci_index(annotations={"k": ["v"]})), None, "at annotations.k: must be a string"
    ),
    # Docker formats
    pytest.param(
        encode(docker_manifest(mediaType=None)),
        mt.DOCKER_MANIFEST,
        "manifest invalid: 'mediaType' is required",
    ),
    pytest.param(
        encode(docker_list(mediaType=None)),
        mt.DOCKER_MANIFEST_LIST,
        "manifest invalid: 'mediaType' is required",
    ),
    pytest.param(
        encode(without(docker_manifest(), "config")), None, "manifest invalid: 'config' is"
    ),
    pytest.param(
        encode(without(docker_manifest(), "layers", 0, "mediaType")),
        None,
        "at layers[0]: 'mediaType' is required",
    ),
    pytest.param(
        encode(docker_list(manifests=[{"mediaType": mt.DOCKER_MANIFEST, "size": 1}])),
        None,
        "at manifests[0]: 'digest' is required",
    ),
]


@pytest.mark.parametrize(("data", "content_type", "fragment"), INVALID)
def test_invalid_manifests_are_manifest_invalid(
    data: bytes, content_type: str | None, fragment: str
) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(data, content_type)
    assert caught.value.code is ErrorCode.MANIFEST_INVALID
    assert caught.value.status == 400
    assert fragment in caught.value.message
    assert len(caught.value.message) < 600


def test_schema_errors_carry_the_path_in_detail() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(encode(with_layer(digest="nope")), None)
    assert caught.value.detail == {"path": "layers[0].digest"}


def test_json_errors_carry_the_position_in_detail() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(b'{\n  "a": tru\n}', None)
    assert caught.value.detail == {"line": 2, "column": 8, "position": 9}


def test_media_type_mismatch_detail_names_both() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(encode(oci_manifest()), mt.OCI_INDEX + "; charset=utf-8")
    assert caught.value.detail == {"content_type": mt.OCI_INDEX, "media_type": mt.OCI_MANIFEST}


def test_unsupported_media_type_detail_lists_accepted_types() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(encode(oci_manifest(mediaType=None)), "text/plain")
    assert caught.value.detail == {
        "media_type": "text/plain",
        "accepted": sorted(MANIFEST_MEDIA_TYPES),
    }


def test_huge_values_are_clipped_in_messages() -> None:
    body = with_layer(mediaType="x" * 1_000_000)
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(encode(body), None)
    assert len(caught.value.message) < 300
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(encode(oci_manifest(mediaType="y" * 1_000_000)), mt.OCI_MANIFEST)
    assert len(caught.value.message) < 600


def test_the_first_problem_reported_is_the_shallowest() -> None:
    body = without(with_layer(digest="nope", size=-1), "config")
    with pytest.raises(ManifestInvalid, match="manifest invalid: 'config' is required"):
        parse_manifest(encode(body), None)


# --- media type resolution -------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "content_type", "shape", "expected"),
    [
        (mt.OCI_MANIFEST, mt.OCI_MANIFEST, "image", mt.OCI_MANIFEST),
        (mt.OCI_MANIFEST, None, "image", mt.OCI_MANIFEST),
        (mt.OCI_MANIFEST, "", "image", mt.OCI_MANIFEST),
        (mt.OCI_MANIFEST, "  ", "image", mt.OCI_MANIFEST),
        (mt.OCI_MANIFEST, "application/json", "image", mt.OCI_MANIFEST),
        (mt.OCI_MANIFEST, "application/octet-stream", "image", mt.OCI_MANIFEST),
        (None, mt.OCI_MANIFEST, "image", mt.OCI_MANIFEST),
        (None, mt.OCI_INDEX, "index", mt.OCI_INDEX),
        (None, mt.DOCKER_MANIFEST, "image", mt.DOCKER_MANIFEST),
        (None, None, "image", mt.OCI_MANIFEST),
        (None, None, "index", mt.OCI_INDEX),
        (None, "application/json; charset=utf-8", "index", mt.OCI_INDEX),
        (mt.DOCKER_MANIFEST_LIST, None, "index", mt.DOCKER_MANIFEST_LIST),
        (mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_LIST, "index", mt.DOCKER_MANIFEST_LIST),
    ],
)
def test_resolve_media_type(
    declared: str | None, content_type: str | None, shape: str, expected: str
) -> None:
    body: dict[str, Any] = {"schemaVersion": 2}
    if shape == "image":
        body["layers"] = []
    else:
        body["manifests"] = []
    if declared is not None:
        body["mediaType"] = declared
    assert resolve_media_type(body, content_type) == expected


@pytest.mark.parametrize(
    ("declared", "content_type", "fragment"),
    [
        (mt.OCI_MANIFEST, mt.OCI_INDEX, "does not match"),
        (mt.DOCKER_MANIFEST, mt.OCI_MANIFEST, "does not match"),
        (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, "does not match"),
        (mt.OCI_MANIFEST, "text/plain", "does not match"),
        (None, "text/plain", "unsupported manifest media type 'text/plain'"),
        (None, mt.OCI_CONFIG, "unsupported manifest media type"),
        (mt.OCI_CONFIG, None, "unsupported manifest media type"),
        (None, mt.DOCKER_SCHEMA1_MANIFEST, "schema 1"),
        (mt.DOCKER_SCHEMA1_SIGNED_MANIFEST, None, "schema 1"),
        (mt.DOCKER_SCHEMA1_SIGNED_MANIFEST, mt.OCI_MANIFEST, "schema 1"),
    ],
)
def test_resolve_media_type_refusals(
    declared: str | None, content_type: str | None, fragment: str
) -> None:
    body: dict[str, Any] = {"schemaVersion": 2, "layers": []}
    if declared is not None:
        body["mediaType"] = declared
    with pytest.raises(ManifestInvalid, match=fragment):
        resolve_media_type(body, content_type)


def test_docker_types_are_never_detected_from_shape() -> None:
    body = docker_manifest(mediaType=None)
    assert resolve_media_type(body, None) == mt.OCI_MANIFEST
    with pytest.raises(ManifestInvalid, match="'mediaType' is required"):
        parse_manifest(encode(body), mt.DOCKER_MANIFEST)


# --- Descriptor ------------------------------------------------------------------


def test_descriptor_to_json_has_only_present_fields() -> None:
    descriptor = Descriptor(mt.OCI_CONFIG, Digest.parse(CONFIG["digest"]), 6)
    assert descriptor.to_json() == CONFIG


def test_descriptor_round_trips_every_field() -> None:
    obj = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": sha256(b"{}"),
        "size": 2,
        "urls": ["https://example.com/a"],
        "annotations": {"org.opencontainers.image.title": "a"},
        "data": "e30=",
        "artifactType": "application/vnd.example.sbom.v1",
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "features": []},
    }
    descriptor = Descriptor.from_json(obj)
    assert descriptor.artifact_type == "application/vnd.example.sbom.v1"
    assert descriptor.to_json() == obj
    assert json.loads(json.dumps(descriptor.to_json())) == obj


def test_descriptor_to_json_returns_fresh_objects() -> None:
    descriptor = Descriptor.from_json({**CHILD_ARM, "annotations": {"a": "b"}})
    out = descriptor.to_json()
    out["annotations"]["a"] = "changed"
    out["platform"]["os.features"].append("x")
    assert descriptor.to_json() == {**CHILD_ARM, "annotations": {"a": "b"}}


def test_descriptors_are_immutable_and_hashable() -> None:
    descriptor = Descriptor.from_json({**LAYER, "annotations": {"a": "b"}})
    assert descriptor.annotations is not None
    with pytest.raises(TypeError):
        descriptor.annotations["a"] = "c"  # type: ignore[index]
    with pytest.raises(AttributeError):
        descriptor.size = 3  # type: ignore[misc]
    again = Descriptor.from_json({**LAYER, "annotations": {"a": "b"}})
    assert descriptor == again
    assert len({descriptor, again}) == 1
    assert hash(parse_manifest(encode(oci_index()), None)) is not None


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        (None, "manifest invalid at descriptor: must be an object, not null"),
        ([], "must be an object, not an array"),
        ({}, "at descriptor: 'mediaType' is required"),
        ({**LAYER, "digest": "sha256:1"}, "at descriptor.digest: invalid sha256 digest"),
        ({**LAYER, "size": -5}, "at descriptor.size: must be at least 0"),
        ({**LAYER, "mediaType": "bad"}, "at descriptor.mediaType: 'bad' is not a valid media"),
        ({**LAYER, "platform": {}}, "at descriptor.platform: 'architecture' is required"),
    ],
)
def test_descriptor_from_json_validates(obj: object, fragment: str) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        Descriptor.from_json(obj)
    assert fragment in caught.value.message


def test_descriptor_from_json_names_the_place() -> None:
    with pytest.raises(ManifestInvalid, match=r"at subject\.size: must be an integer"):
        Descriptor.from_json({**LAYER, "size": "1"}, where="subject")


# --- schemas ---------------------------------------------------------------------


SCHEMA_FILES = [
    "oci-image-manifest.schema.json",
    "oci-image-index.schema.json",
    "docker-manifest-v2.schema.json",
    "docker-manifest-list.schema.json",
]


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schemas_ship_as_package_data_and_are_valid_2020_12(name: str) -> None:
    text = resources.files("arca.formats").joinpath("schemas", name).read_text("utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("oci-image-manifest.schema.json", oci_manifest(subject=SUBJECT, artifactType="a/b")),
        ("oci-image-index.schema.json", oci_index(subject=SUBJECT)),
        ("docker-manifest-v2.schema.json", docker_manifest()),
        ("docker-manifest-list.schema.json", docker_list()),
    ],
)
def test_schemas_accept_their_examples_with_a_stock_validator(
    name: str, body: dict[str, Any]
) -> None:
    text = resources.files("arca.formats").joinpath("schemas", name).read_text("utf-8")
    jsonschema.Draft202012Validator(json.loads(text)).validate(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(MANIFEST_MEDIA_TYPES)), st.data())
def test_runtime_validators_agree_with_the_shipped_schemas(
    media_type: str, data: st.DataObject
) -> None:
    # The runtime validators run on a copy with the $refs expanded; it must judge
    # every instance exactly as the shipped schema does.
    name = manifest_module._SCHEMA_FILES[media_type]
    shipped = manifest_module._Validator(manifest_module._load_schema(name))
    bases = {
        mt.OCI_MANIFEST: oci_manifest(subject=SUBJECT),
        mt.OCI_INDEX: oci_index(subject=SUBJECT),
        mt.DOCKER_MANIFEST: docker_manifest(),
        mt.DOCKER_MANIFEST_LIST: docker_list(),
    }
    body = mutate(
        copy.deepcopy(bases[media_type]),
        data.draw(st.lists(st.integers(min_value=0, max_value=20), max_size=5)),
        data.draw(JSON),
    )
    runtime = manifest_module._validator(media_type)
    assert runtime.is_valid(body) == shipped.is_valid(body)
    assert [e.absolute_path for e in runtime.iter_errors(body)] == [
        e.absolute_path for e in shipped.iter_errors(body)
    ]


def test_validators_are_built_once_per_process() -> None:
    for media_type in MANIFEST_MEDIA_TYPES:
        assert manifest_module._validator(media_type) is manifest_module._validator(media_type)
    assert manifest_module._descriptor_validator() is manifest_module._descriptor_validator()


def test_manifest_media_types() -> None:
    assert (
        frozenset({mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST})
        == MANIFEST_MEDIA_TYPES
    )


# --- robustness ------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "",
        "application/json",
        "text/plain; charset=utf-8",
        *sorted(MANIFEST_MEDIA_TYPES),
        *sorted(mt.DOCKER_SCHEMA1_MEDIA_TYPES),
        mt.OCI_ARTIFACT_MANIFEST,
    ]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [2, 1, mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, sha256(b"x"), "a/b", "e30="]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "schemaVersion",
                    "mediaType",
                    "config",
                    "layers",
                    "manifests",
                    "subject",
                    "artifactType",
                    "annotations",
                    "digest",
                    "size",
                    "platform",
                    "data",
                    "urls",
                    "os",
                    "architecture",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


def check_robust(data: bytes, content_type: str | None) -> None:
    try:
        result = parse_manifest(data, content_type)
    except ManifestInvalid as exc:
        # renderable as an error body, with something to say
        rendered = json.loads(json.dumps(exc.to_json()))
        assert rendered["errors"][0]["code"] == "MANIFEST_INVALID"
        assert rendered["errors"][0]["message"]
    else:
        assert result.media_type in MANIFEST_MEDIA_TYPES
        for descriptor in (*result.blobs, *result.children):
            json.dumps(descriptor.to_json())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), CONTENT_TYPES)
def test_random_bytes_never_crash(data: bytes, content_type: str | None) -> None:
    check_robust(data, content_type)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, CONTENT_TYPES)
def test_random_json_never_crashes(value: object, content_type: str | None) -> None:
    check_robust(json.dumps(value).encode(), content_type)


BASES = [oci_manifest(), oci_index(), docker_manifest(), docker_list()]


def mutate(body: Any, path: list[int], value: object) -> Any:
    """Replace the node that `path` (indices into sorted keys/items) leads to."""
    if not path or not isinstance(body, dict | list) or not body:
        return value
    keys = sorted(body) if isinstance(body, dict) else list(range(len(body)))
    key = keys[path[0] % len(keys)]
    body[key] = mutate(body[key], path[1:], value)
    return body


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(BASES))),
    st.lists(st.integers(min_value=0, max_value=20), max_size=5),
    JSON,
    CONTENT_TYPES,
)
def test_mutated_manifests_never_crash(
    base: int, path: list[int], value: object, content_type: str | None
) -> None:
    body = mutate(copy.deepcopy(BASES[base]), path, value)
    check_robust(json.dumps(body).encode(), content_type)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(range(len(BASES))), st.data())
def test_truncated_and_corrupted_bytes_never_crash(base: int, data: st.DataObject) -> None:
    raw = bytearray(json.dumps(BASES[base]).encode())
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[position] = data.draw(st.integers(min_value=0, max_value=255))
    check_robust(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw), None)
