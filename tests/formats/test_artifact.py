"""arca artifacts: validation, the doc's vectors, and the mapping to and from OCI."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from arca.errors import ManifestInvalid
from arca.formats import cbor
from arca.formats.artifact import (
    ARTIFACT_MEDIA_TYPE,
    MAX_LABELS,
    Artifact,
    ArtifactFile,
    ArtifactLink,
    Subject,
    artifact_schema,
    check_oci_manifest,
    decode_artifact,
    encode_artifact,
    from_oci_manifest,
    is_arca_manifest,
    to_oci_manifest,
)
from arca.formats.digest import Digest
from arca.formats.manifest import parse_manifest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cbor-artifacts.md"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _doc_block(info: str) -> str:
    """The body of the fenced block whose info string is `info`, from the doc."""
    pattern = rf"^```{re.escape(info)}\n(.*?)^```$"
    match = re.search(pattern, DOC.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
    assert match is not None, f"no ```{info} block in {DOC.name}"
    return match.group(1)


def _file(path: str, content: bytes, media_type: str = "text/plain") -> ArtifactFile:
    return ArtifactFile(
        path, media_type, len(content), Digest.of(content), Digest.of(content, "blake3")
    )


def _blake3_of(artifact: Artifact) -> dict[str, str]:
    return {str(file.sha256): str(file.blake3) for file in artifact.files}


def _artifact(**changes: Any) -> Artifact:
    base = Artifact(
        name="nightly/results",
        version="2024.06.01",
        created=datetime(2024, 6, 1, 12, tzinfo=UTC),
        labels={"run_id": "42", "status": "pass"},
        metadata={"attempts": 3, "ratio": 0.5},
        files=(_file("a.txt", b"a"), _file("b/c.json", b"{}", "application/json")),
    )
    return dataclasses.replace(base, **changes)


def _document(**changes: Any) -> dict[str, Any]:
    """The decoded form of `_artifact()`, with top-level keys changed (None deletes)."""
    document = cbor.decode(encode_artifact(_artifact()))
    assert isinstance(document, dict)
    for key, value in changes.items():
        if value is None:
            del document[key]
        else:
            document[key] = value
    return document


def _with_file(**changes: Any) -> dict[str, Any]:
    document = _document()
    document["files"][0].update(changes)
    return document


# --------------------------------------------------------------------- doc vectors

VECTORS = ["minimal", "full", "tree"]


@pytest.mark.parametrize("name", VECTORS)
def test_doc_vector_decoded_form_encodes_to_its_bytes(name: str) -> None:
    decoded = json.loads(_doc_block(f"json vector:{name}:decoded"))
    data = bytes.fromhex("".join(_doc_block(f"hex vector:{name}:cbor").split()))
    assert cbor.encode(decoded) == data
    # cbor2 alone, not arca's decoder, reads the same value back: the bytes are plain CBOR.
    assert cbor2.loads(data) == decoded


def test_a_tree_keeps_directories_links_and_the_executable_bit() -> None:
    tree = _artifact(
        files=(dataclasses.replace(_file("bin/run", b"x"), executable=True), _file("a", b"a")),
        directories=("empty/nested",),
        links=(ArtifactLink("up/to-a", "../a"), ArtifactLink("here", "bin/run")),
    )
    back = decode_artifact(encode_artifact(tree))
    assert back == tree
    assert [link.path for link in back.links] == ["here", "up/to-a"]
    assert back.files[1].executable
    assert not back.files[0].executable


def test_an_artifact_type_becomes_the_manifests_artifact_type() -> None:
    report = _artifact(artifact_type="application/vnd.example.report+json")
    document = encode_artifact(report)
    assert decode_artifact(document) == report
    manifest = json.loads(to_oci_manifest(report, document))
    assert manifest["artifactType"] == "application/vnd.example.report+json"
    assert manifest["config"]["mediaType"] == ARTIFACT_MEDIA_TYPE
    assert is_arca_manifest(manifest)


def test_documents_without_the_tree_keys_keep_their_bytes() -> None:
    plain = _artifact()
    assert encode_artifact(plain) == encode_artifact(dataclasses.replace(plain, directories=()))
    assert b"directories" not in encode_artifact(plain)
    assert b"executable" not in encode_artifact(plain)


@pytest.mark.parametrize("name", VECTORS)
def test_doc_vector_round_trips_through_the_artifact_model(name: str) -> None:
    data = bytes.fromhex("".join(_doc_block(f"hex vector:{name}:cbor").split()))
    assert encode_artifact(decode_artifact(data)) == data


@pytest.mark.parametrize("name", VECTORS)
def test_doc_vector_oci_manifest_is_byte_for_byte(name: str) -> None:
    data = bytes.fromhex("".join(_doc_block(f"hex vector:{name}:cbor").split()))
    manifest = _doc_block(f"json vector:{name}:manifest").rstrip("\n").encode()
    assert to_oci_manifest(decode_artifact(data), data) == manifest
    digests = _doc_block(f"text vector:{name}:digests")
    assert f"document: {Digest.of(data)} ({len(data)} bytes)" in digests
    assert f"manifest: {Digest.of(manifest)} ({len(manifest)} bytes)" in digests


def test_doc_schema_is_the_shipped_schema() -> None:
    assert json.loads(_doc_block("json schema:artifact-v1")) == artifact_schema()


def test_shipped_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(artifact_schema())


def test_schema_limit_on_labels_matches_the_code() -> None:
    assert artifact_schema()["properties"]["labels"]["maxProperties"] == MAX_LABELS


# --------------------------------------------------------------------- validation

INVALID_DOCUMENTS = [
    # (decoded form, text the message must contain)
    (_document(format=2), "/format: 1 was expected"),
    (_document(format=1.0), "/format: 1.0 is not of type 'integer'"),
    (_document(name=None), "'name' is a required property"),
    (_document(files=None), "'files' is a required property"),
    (_document(metadata=None), "'metadata' is a required property"),
    (_document(extra=1), "('extra' was unexpected)"),
    (_document(name=""), "/name: '' should be non-empty"),
    (_document(name="x" * 256), "/name: 'xxxxx"),
    (_document(name="a\tb"), "/name: 'a\\tb' is not a valid artifact name"),
    (_document(version="1\n"), "/version: '1\\n' is not a valid artifact version"),
    (_document(created=-1), "/created: -1 is less than the minimum of 0"),
    (_document(created=253402300800), "/created: 253402300800 is greater than the maximum"),
    (_document(created=1.5), "/created: 1.5 is not of type 'integer'"),
    (_document(created=True), "/created: True is not of type 'integer'"),
    (_document(labels={"run id": "1"}), "/labels: 'run id' is not a valid label key"),
    (_document(labels={"run_id\n": "1"}), "/labels: 'run_id\\n' is not a valid label key"),
    (_document(labels={"_x": "1"}), "/labels: '_x' is not a valid label key"),
    (_document(labels={"status": "a\x7fb"}), "/labels/status: 'a\\x7fb' is not a valid label"),
    (_document(labels={"status": 1}), "/labels/status: 1 is not of type 'string'"),
    (_document(labels={f"k{i}": "v" for i in range(65)}), "/labels: {'k0': 'v'"),
    (_document(files=[]), "/files: [] should be non-empty"),
    (
        _document(subject={"mediaType": "a/b", "digest": "sha1:" + "0" * 40, "size": 1}),
        "/subject/digest",
    ),
    (_document(subject={"mediaType": "a/b", "size": 1}), "'digest' is a required property"),
    (_with_file(path="/etc/passwd"), "/files/0/path: '/etc/passwd' is not a valid file path"),
    (_with_file(path="a/../b"), "is not a valid file path"),
    (_with_file(path=".."), "is not a valid file path"),
    (_with_file(path="./a"), "is not a valid file path"),
    (_with_file(path="a//b"), "is not a valid file path"),
    (_with_file(path="a/"), "is not a valid file path"),
    (_with_file(path="a\\b"), "is not a valid file path"),
    (_with_file(path="a\nb"), "is not a valid file path"),
    (_with_file(path=""), "/files/0/path: '' should be non-empty"),
    (_with_file(path="x" * 513), "/files/0/path"),
    (_with_file(path="z.txt"), "/files/1/path: files not sorted by path ('b/c.json' after"),
    (_with_file(path="b/c.json"), "/files/1/path: duplicate path 'b/c.json'"),
    (_with_file(mediaType="text/plain; charset=utf-8"), "is not a valid media type"),
    (_with_file(size=-1), "/files/0/size: -1 is less than the minimum of 0"),
    (_with_file(size=2**63), "/files/0/size: 9223372036854775808 is greater than the maximum"),
    (_with_file(size=1.0), "/files/0/size: 1.0 is not of type 'integer'"),
    (_with_file(sha256="sha256:" + "A" * 64), "is not a valid sha256 digest"),
    (_with_file(blake3="sha256:" + "0" * 64), "is not a valid blake3 digest"),
    (_with_file(blake3=None), "/files/0/blake3: None is not of type 'string'"),
    (_with_file(extra="x"), "/files/0: Additional properties are not allowed"),
    (
        _with_file(sha256=str(Digest.of(b"{}"))),
        "/files/1: sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a "
        "appears with another size or blake3 digest",
    ),
    ([], "(document): [] is not of type 'object'"),
    # directories, links and the executable bit
    (_with_file(executable=False), "/files/0/executable: True was expected"),
    (_document(directories=[]), "/directories: [] should be non-empty"),
    (_document(directories=["b", "a"]), "directories not sorted by path ('a' after 'b')"),
    (_document(directories=["/abs"]), "is not a valid file path"),
    (_document(directories=["a.txt"]), "/directories/0: path 'a.txt' is also a file"),
    (_document(links=[{"path": "l", "target": "/etc"}]), "is not a valid link target"),
    (_document(links=[{"path": "l", "target": "a/../../x"}]), "is not a valid link target"),
    (_document(links=[{"path": "l", "target": "../x"}]), "link 'l' points outside the artifact"),
    (
        _document(links=[{"path": "d/l", "target": "../../x"}]),
        "link 'd/l' points outside the artifact ('../../x')",
    ),
    (_document(links=[{"path": "b", "target": "a.txt"}]), "'b/c.json' lies below the link 'b'"),
    (_document(links=[{"path": "l"}]), "'target' is a required property"),
    (_document(artifactType="not a type"), "is not a valid media type"),
    (_document(artifactType=ARTIFACT_MEDIA_TYPE), "artifactType is the default: leave it out"),
]


@pytest.mark.parametrize(
    ("document", "message"), INVALID_DOCUMENTS, ids=[m[:40] for _, m in INVALID_DOCUMENTS]
)
def test_invalid_document_is_rejected_naming_the_problem(document: Any, message: str) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        decode_artifact(cbor.encode(document))
    assert caught.value.message.startswith("artifact invalid: ")
    assert message in caught.value.message


def test_rejections_say_where_and_which_rule_in_detail() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        decode_artifact(cbor.encode(_with_file(path="../x")))
    assert caught.value.detail == {"path": "/files/0/path", "rule": "pattern"}


def test_non_canonical_document_is_rejected_before_the_schema() -> None:
    document = _document(metadata="none", format=2)  # also schema-invalid: which comes first?
    data = cbor2.dumps(dict(reversed(document.items())))  # insertion order, keys unsorted
    with pytest.raises(ManifestInvalid, match=r"CBOR not canonical: map keys not sorted"):
        decode_artifact(data)


def test_encode_refuses_what_decode_would_refuse() -> None:
    twice = _file("a.txt", b"a")
    with pytest.raises(ManifestInvalid, match=r"duplicate path 'a\.txt'"):
        encode_artifact(_artifact(files=(twice, twice)))
    with pytest.raises(ManifestInvalid, match="timezone-aware"):
        encode_artifact(_artifact(created=datetime(2024, 1, 1)))
    with pytest.raises(ManifestInvalid, match="whole number of seconds"):
        encode_artifact(_artifact(created=datetime(2024, 1, 1, microsecond=1, tzinfo=UTC)))
    with pytest.raises(ManifestInvalid, match="NaN and infinite floats"):
        encode_artifact(_artifact(metadata={"x": float("nan")}))
    with pytest.raises(ManifestInvalid, match="less than the minimum of 0"):
        encode_artifact(_artifact(created=datetime(1969, 12, 31, tzinfo=UTC)))


def test_created_in_any_timezone_encodes_as_the_same_instant() -> None:
    utc = _artifact(created=datetime(2024, 6, 1, 12, tzinfo=UTC))
    paris = _artifact(created=datetime(2024, 6, 1, 14, tzinfo=timezone(timedelta(hours=2))))
    assert encode_artifact(utc) == encode_artifact(paris)
    assert decode_artifact(encode_artifact(paris)).created == paris.created


def test_artifact_holds_files_and_labels_in_canonical_order() -> None:
    files = (_file("b", b"b"), _file("a", b"a"), _file("é", b"e"), _file("z", b"z"))
    artifact = _artifact(files=files, labels={"z": "1", "a": "2"})
    assert [file.path for file in artifact.files] == ["a", "b", "z", "é"]
    assert list(artifact.labels) == ["a", "z"]
    assert artifact == _artifact(files=tuple(reversed(files)), labels={"a": "2", "z": "1"})


def test_optional_fields_are_absent_not_null() -> None:
    document = cbor.decode(encode_artifact(_artifact(created=None, subject=None, metadata=None)))
    assert isinstance(document, dict)
    assert "created" not in document
    assert "subject" not in document
    assert document["metadata"] is None


# --------------------------------------------------------------------- OCI mapping


def test_arca_artifact_round_trips_through_the_oci_manifest_byte_for_byte() -> None:
    """What the registry does: an arca manifest's view is its config blob."""
    artifact = _artifact(subject=Subject(OCI_MANIFEST, Digest.of(b"s"), 1))
    document = encode_artifact(artifact)
    manifest_bytes = to_oci_manifest(artifact, document)
    manifest = json.loads(manifest_bytes)
    blobs = {str(Digest.of(document)): document}

    assert is_arca_manifest(manifest)
    assert check_oci_manifest(manifest_bytes, blobs[manifest["config"]["digest"]]) == artifact
    view = blobs[manifest["config"]["digest"]]
    assert view == document
    assert decode_artifact(view) == artifact


def test_derived_view_of_an_arca_manifest_is_byte_identical_without_metadata() -> None:
    artifact = _artifact(metadata=None, subject=Subject(OCI_MANIFEST, Digest.of(b"s"), 1))
    document = encode_artifact(artifact)
    manifest = json.loads(to_oci_manifest(artifact, document))
    view = from_oci_manifest(manifest, _blake3_of(artifact), "other/repo", "some-tag")
    assert encode_artifact(view) == document


def test_derived_view_of_an_arca_manifest_loses_only_metadata() -> None:
    artifact = _artifact(metadata={"big": list(range(100))})
    manifest = json.loads(to_oci_manifest(artifact, encode_artifact(artifact)))
    view = from_oci_manifest(manifest, _blake3_of(artifact), "repo", None)
    assert view == dataclasses.replace(artifact, metadata=None)


def test_same_document_gives_the_same_manifest_digest() -> None:
    files = (_file("b", b"b"), _file("a", b"a"))
    one = _artifact(files=files, labels={"x": "1", "a": "2"})
    two = _artifact(files=files[::-1], labels={"a": "2", "x": "1"})
    document = encode_artifact(one)
    assert encode_artifact(two) == document
    manifests = {
        to_oci_manifest(one, document),
        to_oci_manifest(two, document),
        to_oci_manifest(decode_artifact(document), document),
    }
    assert len(manifests) == 1
    assert Digest.of(manifests.pop()) == Digest.of(to_oci_manifest(one, document))


def test_manifest_is_a_valid_oci_image_manifest_with_the_documented_shape() -> None:
    artifact = _artifact(subject=Subject(OCI_MANIFEST, Digest.of(b"s"), 1))
    document = encode_artifact(artifact)
    data = to_oci_manifest(artifact, document)
    parsed = parse_manifest(data, OCI_MANIFEST)
    assert parsed.artifact_type == ARTIFACT_MEDIA_TYPE
    manifest = json.loads(data)
    assert list(manifest) == [
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "subject",
        "annotations",
    ]
    assert manifest["config"] == {
        "mediaType": ARTIFACT_MEDIA_TYPE,
        "digest": str(Digest.of(document)),
        "size": len(document),
    }
    assert manifest["layers"][1] == {
        "mediaType": "application/json",
        "digest": str(Digest.of(b"{}")),
        "size": 2,
        "annotations": {"org.opencontainers.image.title": "b/c.json"},
    }
    assert manifest["annotations"] == {
        "dev.arca.label.run_id": "42",
        "dev.arca.label.status": "pass",
        "org.opencontainers.image.created": "2024-06-01T12:00:00Z",
        "org.opencontainers.image.title": "nightly/results",
        "org.opencontainers.image.version": "2024.06.01",
    }
    assert data == json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()


def test_to_oci_manifest_refuses_a_document_of_another_artifact() -> None:
    with pytest.raises(ValueError, match="not the canonical encoding"):
        to_oci_manifest(_artifact(), encode_artifact(_artifact(version="other")))


def test_check_oci_manifest_refuses_a_manifest_that_is_not_the_generated_one() -> None:
    artifact = _artifact()
    document = encode_artifact(artifact)
    pretty = json.dumps(json.loads(to_oci_manifest(artifact, document)), indent=2).encode()
    with pytest.raises(ManifestInvalid, match="not the one generated"):
        check_oci_manifest(pretty, document)


def test_worst_case_manifest_stays_under_the_manifest_size_limit() -> None:
    wide = "\U0001f600"  # four bytes in UTF-8
    digest = Digest("sha256", "0" * 64)
    files = tuple(
        ArtifactFile(
            f"{i:04d}" + wide * 508,
            "a" * 127 + "/" + "b" * 127,
            2**63 - 1,
            digest,
            Digest("blake3", "0" * 64),
        )
        for i in range(1000)
    )
    labels = {f"{i:02d}" + "k" * 126: wide * 1024 for i in range(MAX_LABELS)}
    artifact = _artifact(name=wide * 255, version=wide * 128, labels=labels, files=files)
    manifest = to_oci_manifest(artifact, encode_artifact(artifact))
    assert len(manifest) < 3 * 1024 * 1024


def test_is_arca_manifest_looks_at_the_config_media_type() -> None:
    assert is_arca_manifest({"config": {"mediaType": ARTIFACT_MEDIA_TYPE}})
    assert not is_arca_manifest({"config": {"mediaType": "application/vnd.oci.empty.v1+json"}})
    assert not is_arca_manifest({"manifests": []})


# --------------------------------------------------------------------- derived views


def _oras_manifest(**changes: Any) -> dict[str, Any]:
    """A manifest as `oras push` writes one: empty config, titled layers, created."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.report",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": str(Digest.of(b"{}")),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "text/html",
                "digest": str(Digest.of(b"<p>")),
                "size": 3,
                "annotations": {"org.opencontainers.image.title": "report.html"},
            },
            {"mediaType": "application/octet-stream", "digest": str(Digest.of(b"raw")), "size": 3},
        ],
        "annotations": {"org.opencontainers.image.created": "2024-06-01T14:00:00.987+02:00"},
    }
    manifest.update(changes)
    return manifest


BLAKE3_OF = {str(Digest.of(c)): str(Digest.of(c, "blake3")) for c in (b"<p>", b"raw", b"{}")}


def test_derived_view_of_an_oras_manifest() -> None:
    view = from_oci_manifest(_oras_manifest(), BLAKE3_OF, "reports/daily", "v1")
    assert view == Artifact(
        name="reports/daily",
        version="v1",
        created=datetime(2024, 6, 1, 12, tzinfo=UTC),
        files=(
            ArtifactFile(
                "report.html", "text/html", 3, Digest.of(b"<p>"), Digest.of(b"<p>", "blake3")
            ),
            ArtifactFile(
                str(Digest.of(b"raw")),
                "application/octet-stream",
                3,
                Digest.of(b"raw"),
                Digest.of(b"raw", "blake3"),
            ),
        ),
    )
    assert decode_artifact(encode_artifact(view)) == view


@pytest.mark.parametrize(
    ("reference", "version"),
    [("v1", "v1"), (None, ""), ("sha256:" + "0" * 64, ""), ("x" * 129, "")],
)
def test_derived_version_is_the_tag_pulled_when_there_is_no_annotation(
    reference: str | None, version: str
) -> None:
    assert from_oci_manifest(_oras_manifest(), BLAKE3_OF, "r", reference).version == version


def test_derived_name_and_version_prefer_the_annotations() -> None:
    annotations = {
        "org.opencontainers.image.title": "Daily report",
        "org.opencontainers.image.version": "",
    }
    view = from_oci_manifest(_oras_manifest(annotations=annotations), BLAKE3_OF, "r", "v1")
    assert (view.name, view.version) == ("Daily report", "")
    bad = {"org.opencontainers.image.title": "a\nb"}
    assert from_oci_manifest(_oras_manifest(annotations=bad), BLAKE3_OF, "r", None).name == "r"


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2024-06-01T12:00:00Z", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("2024-06-01t12:00:00.999999999z", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("2024-06-01T08:30:00-03:30", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", EPOCH),
        ("1969-12-31T23:59:59Z", None),
        ("2024-02-30T00:00:00Z", None),
        ("2024-06-01T23:59:60Z", None),
        ("2024-06-01 12:00:00Z", None),
        ("2024-06-01T12:00:00", None),
        ("2024-06-01T12:00:00Z\n", None),
        ("yesterday", None),
    ],
)
def test_derived_created_comes_from_the_rfc3339_annotation(
    created: str, expected: datetime | None
) -> None:
    manifest = _oras_manifest(annotations={"org.opencontainers.image.created": created})
    assert from_oci_manifest(manifest, BLAKE3_OF, "r", None).created == expected


def test_derived_labels_keep_valid_label_annotations_only() -> None:
    annotations = {
        "dev.arca.label.status": "pass",
        "dev.arca.label.bad key": "x",
        "dev.arca.label.run_id": "a\nb",
        "dev.arca.label.": "empty key",
        "org.example.other": "ignored",
    }
    view = from_oci_manifest(_oras_manifest(annotations=annotations), BLAKE3_OF, "r", None)
    assert view.labels == {"status": "pass"}


def test_derived_labels_keep_the_first_64_in_key_order() -> None:
    annotations = {f"dev.arca.label.k{i:03d}": "v" for i in range(100)}
    view = from_oci_manifest(_oras_manifest(annotations=annotations), BLAKE3_OF, "r", None)
    assert list(view.labels) == [f"k{i:03d}" for i in range(MAX_LABELS)]


def test_derived_paths_fall_back_to_the_digest() -> None:
    layers = _oras_manifest()["layers"]
    titled = copy.deepcopy(layers[0])
    titled["digest"] = str(Digest.of(b"raw"))
    untitled_bad = copy.deepcopy(layers[1])
    untitled_bad["annotations"] = {"org.opencontainers.image.title": "../escape"}
    untitled_bad["digest"] = str(Digest.of(b"{}"))
    manifest = _oras_manifest(layers=[layers[0], titled, untitled_bad])
    view = from_oci_manifest(manifest, BLAKE3_OF, "r", None)
    assert [file.path for file in view.files] == sorted(
        [
            "report.html",
            str(Digest.of(b"raw")),  # its title was taken by the first layer
            str(Digest.of(b"{}")),  # its title is not a valid path
        ]
    )


BAD_LAYERS = [
    ({"digest": "sha512:" + "0" * 128}, "layer 0: digest sha512:000"),
    ({"digest": str(Digest.of(b"unknown"))}, "layer 0: no blake3 digest known for sha256:"),
    ({"digest": "sha256:abc"}, "invalid sha256 digest"),
    ({"digest": 7}, "layer 0: digest is not a string"),
    ({"mediaType": "text"}, "layer 0: media type 'text' is not valid"),
    ({"size": -1}, "layer 0: size -1 is not valid"),
    ({"size": "3"}, "layer 0: size '3' is not valid"),
]


@pytest.mark.parametrize(("change", "message"), BAD_LAYERS, ids=[m for _, m in BAD_LAYERS])
def test_derived_view_fails_on_a_layer_it_cannot_hold(change: dict[str, Any], message: str) -> None:
    manifest = _oras_manifest()
    manifest["layers"][0].update(change)
    with pytest.raises(ManifestInvalid) as caught:
        from_oci_manifest(manifest, BLAKE3_OF, "r", None)
    assert message in caught.value.message


def test_derived_view_fails_when_the_same_untitled_blob_appears_twice() -> None:
    layer = _oras_manifest()["layers"][1]
    with pytest.raises(ManifestInvalid, match="layer 1: no usable path"):
        from_oci_manifest(_oras_manifest(layers=[layer, layer]), BLAKE3_OF, "r", None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layers": []}, "/files: [] should be non-empty"),
        ({"layers": None}, "manifest has no layers array"),
        ({"layers": ["x"]}, "layer 0: not a descriptor"),
        ({"subject": {"digest": "sha256:x"}}, "subject is not a descriptor arca can hold"),
        ({"subject": "x"}, "subject is not a descriptor"),
    ],
)
def test_derived_view_fails_on_a_manifest_it_cannot_hold(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        from_oci_manifest(_oras_manifest(**changes), BLAKE3_OF, "r", None)
    assert message in caught.value.message


def test_derived_view_keeps_a_subject() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(b"s")), "size": 1}
    view = from_oci_manifest(_oras_manifest(subject=subject), BLAKE3_OF, "r", None)
    assert view.subject == Subject(OCI_MANIFEST, Digest.of(b"s"), 1)


# --------------------------------------------------------------------- properties

_NO_CONTROL = st.characters(exclude_categories=("Cc", "Cs"))
_SEGMENT = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/\\"),
    min_size=1,
    max_size=8,
).filter(lambda segment: segment not in (".", ".."))
_PATHS = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)
_SHA256 = st.binary(min_size=32, max_size=32).map(lambda raw: Digest("sha256", raw.hex()))
_MEDIA_TYPES = st.sampled_from(
    ["text/plain", "application/json", "application/vnd.oci.image.layer.v1.tar+gzip"]
)
# Real digests of real content: two files with one sha256 are one blob, so agree.
_FILES = st.builds(_file, _PATHS, st.binary(max_size=16), _MEDIA_TYPES)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
ARTIFACTS = st.builds(
    Artifact,
    name=st.text(_NO_CONTROL, min_size=1, max_size=40),
    version=st.text(_NO_CONTROL, max_size=20),
    created=st.none() | st.integers(0, 253402300799).map(lambda s: EPOCH + timedelta(seconds=s)),
    labels=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
        st.text(_NO_CONTROL, max_size=20),
        max_size=5,
    ),
    metadata=_JSON,
    subject=st.none() | st.builds(Subject, _MEDIA_TYPES, _SHA256, st.integers(0, 2**63 - 1)),
    files=st.lists(_FILES, min_size=1, max_size=5, unique_by=lambda file: file.path).map(tuple),
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(deadline=None)
@given(ARTIFACTS)
def test_decode_of_encode_is_the_same_artifact(artifact: Artifact) -> None:
    assume(_depth(artifact.metadata) < cbor.MAX_DEPTH)
    document = encode_artifact(artifact)
    assert decode_artifact(document) == artifact
    assert encode_artifact(decode_artifact(document)) == document


@settings(deadline=None)
@given(ARTIFACTS)
def test_oci_round_trip_is_byte_identical(artifact: Artifact) -> None:
    assume(_depth(artifact.metadata) < cbor.MAX_DEPTH)
    document = encode_artifact(artifact)
    manifest_bytes = to_oci_manifest(artifact, document)
    assert check_oci_manifest(manifest_bytes, document) == artifact
    manifest = json.loads(manifest_bytes)
    view = from_oci_manifest(manifest, _blake3_of(artifact), "repo", None)
    assert view == dataclasses.replace(artifact, metadata=None)
    if artifact.metadata is None:
        assert encode_artifact(view) == document


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_decode_artifact(data: bytes) -> None:
    with contextlib.suppress(ManifestInvalid):
        decode_artifact(data)


@settings(deadline=None)
@given(ARTIFACTS, st.data())
def test_mutated_documents_decode_canonically_or_are_rejected(
    artifact: Artifact, data: st.DataObject
) -> None:
    assume(_depth(artifact.metadata) < cbor.MAX_DEPTH)
    document = bytearray(encode_artifact(artifact))
    index = data.draw(st.integers(0, len(document) - 1))
    document[index] = data.draw(st.integers(0, 255))
    try:
        mutated = decode_artifact(bytes(document))
    except ManifestInvalid:
        return
    assert encode_artifact(mutated) == bytes(document)
