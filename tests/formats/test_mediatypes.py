from __future__ import annotations

import base64
import hashlib

import pytest

from arca.formats import mediatypes as mt


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (";charset=utf-8", None),
        (mt.OCI_MANIFEST, mt.OCI_MANIFEST),
        (f"{mt.OCI_INDEX}; charset=utf-8", mt.OCI_INDEX),
        ("  Application/VND.Docker.Distribution.Manifest.V2+JSON ", mt.DOCKER_MANIFEST),
        ("application/json;q=0.9", "application/json"),
    ],
)
def test_normalize_content_type(header: str | None, expected: str | None) -> None:
    assert mt.normalize_content_type(header) == expected


@pytest.mark.parametrize(
    "value",
    [
        mt.OCI_MANIFEST,
        mt.OCI_EMPTY,
        mt.DOCKER_FOREIGN_LAYER,
        "application/vnd.example.sbom.v1",
        "a/b",
        "x-custom/y!#$&^_.+-",
        "a" * 127 + "/" + "b" * 127,
    ],
)
def test_well_formed_media_types(value: str) -> None:
    assert mt.is_media_type(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "application",
        "application/",
        "/json",
        "application/json; charset=utf-8",
        "application/json\n",
        "-app/json",
        "app/-json",
        "a/b/c",
        "a" * 128 + "/b",
        "application/jsön",
        None,
        7,
    ],
)
def test_malformed_media_types(value: object) -> None:
    assert not mt.is_media_type(value)


def test_accepted_manifest_types() -> None:
    assert {
        mt.OCI_MANIFEST,
        mt.OCI_INDEX,
        mt.DOCKER_MANIFEST,
        mt.DOCKER_MANIFEST_LIST,
    } == mt.MANIFEST_MEDIA_TYPES
    assert mt.INDEX_MEDIA_TYPES | mt.IMAGE_MANIFEST_MEDIA_TYPES == mt.MANIFEST_MEDIA_TYPES
    assert not mt.INDEX_MEDIA_TYPES & mt.IMAGE_MANIFEST_MEDIA_TYPES
    assert not mt.MANIFEST_MEDIA_TYPES & mt.DOCKER_SCHEMA1_MEDIA_TYPES
    assert mt.OCI_ARTIFACT_MANIFEST not in mt.MANIFEST_MEDIA_TYPES


def test_helpers() -> None:
    assert mt.is_manifest_media_type(mt.OCI_INDEX)
    assert not mt.is_manifest_media_type(mt.OCI_CONFIG)
    assert not mt.is_manifest_media_type(None)
    assert mt.is_index_media_type(mt.DOCKER_MANIFEST_LIST)
    assert not mt.is_index_media_type(mt.OCI_MANIFEST)


def test_empty_json_descriptor_constants_agree() -> None:
    content = base64.b64decode(mt.EMPTY_JSON_DATA)
    assert content == b"{}"
    assert len(content) == mt.EMPTY_JSON_SIZE
    assert "sha256:" + hashlib.sha256(content).hexdigest() == mt.EMPTY_JSON_DIGEST
