"""/api/v1 over HTTP: shapes (checked against the OpenAPI document), records, verify, deletes."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import jsonschema
import pytest
from starlette.endpoints import HTTPEndpoint
from starlette.routing import Route

from arca.api.auth import Guarded
from arca.api.control.openapi import document
from arca.api.control.routes import CONTROL_ROUTES
from arca.formats.digest import Digest
from arca.storage import layout
from arca.storage.drivers.memory import MemoryDriver
from tests.control.helpers import error_code, listing, push_artifact, sha256

ROOT = Path(__file__).resolve().parents[2]
FILES = {"report.html": b"<html>ok</html>", "data/results.json": b'{"passed": 12}'}


def conforms(instance: object, schema: str) -> None:
    jsonschema.Draft202012Validator(
        {**document(), "$ref": f"#/components/schemas/{schema}"}
    ).validate(instance)


def test_listing_matches_its_schema_and_links_the_next_page(client):
    for i in range(3):
        push_artifact(client, "team/reports", f"v{i}", minute=i, labels={"run_id": f"r{i}"})
    response = client.get("/api/v1/repositories/team/reports/artifacts?limit=2&label=run_id=r1")
    conforms(response.json(), "ArtifactList")
    response = client.get("/api/v1/repositories/team/reports/artifacts?limit=2")
    body = response.json()
    conforms(body, "ArtifactList")
    assert body["name"] == "team/reports"
    link = response.headers["Link"]
    assert link.endswith('>; rel="next"')
    assert f"cursor={body['cursor']}" in link
    following = client.get(link[1 : link.index(">")]).json()
    assert [a["version"] for a in following["artifacts"]] == ["v0"]


def test_latest_is_the_newest_match(client):
    push_artifact(client, "reports", "old", minute=1, labels={"template_id": "a"})
    push_artifact(client, "reports", "new", minute=2, labels={"template_id": "a"})
    push_artifact(client, "reports", "other", minute=3, labels={"template_id": "b"})
    response = client.get("/api/v1/repositories/reports/latest?label=template_id=a")
    conforms(response.json(), "ArtifactSummary")
    assert response.json()["version"] == "new"
    assert client.get("/api/v1/repositories/reports/latest").json()["version"] == "other"


def test_latest_without_a_match_is_manifest_unknown(client):
    push_artifact(client, "reports", "v1", labels={"template_id": "a"})
    response = client.get("/api/v1/repositories/reports/latest?label=template_id=zzz")
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"
    assert "template_id=zzz" in response.json()["errors"][0]["message"]


def test_unknown_repository_is_name_unknown(client):
    for path in ("artifacts", "latest"):
        response = client.get(f"/api/v1/repositories/nothing/here/{path}")
        assert response.status_code == 404
        assert error_code(response) == "NAME_UNKNOWN"


def test_record_has_tags_digests_labels_files_size_created(client):
    digest = push_artifact(
        client,
        "reports",
        "v1",
        minute=30,
        labels={"run_id": "r-1"},
        files=FILES,
        metadata={"rows": 12},
    )
    for reference in ("v1", digest):
        response = client.get(f"/api/v1/repositories/reports/artifacts/{reference}")
        assert response.status_code == 200, response.text
        record = response.json()
        conforms(record, "ArtifactRecord")
        assert record["digest"] == digest
        assert record["tags"] == ["v1"]
        assert record["labels"] == {"run_id": "r-1"}
        assert record["created"] == "2026-01-01T00:30:00Z"
        assert record["size"] == sum(map(len, FILES.values()))
        assert record["metadata"] == {"rows": 12}
        view = client.get(
            f"/v2/reports/manifests/{digest}",
            headers={"Accept": "application/vnd.arca.artifact.v1+cbor"},
        )
        assert record["document"]["digest"] == sha256(view.content)
        files = {f["path"]: f for f in record["files"]}
        assert set(files) == set(FILES)
        for path, data in FILES.items():
            assert files[path]["sha256"] == sha256(data)
            assert files[path]["blake3"] == str(Digest.of(data, "blake3"))
            assert files[path]["size"] == len(data)


def test_record_of_unknown_reference_is_manifest_unknown(client):
    push_artifact(client, "reports", "v1")
    for reference in ("nope", "sha256:" + "0" * 64, "bad:digest"):
        response = client.get(f"/api/v1/repositories/reports/artifacts/{reference}")
        assert response.status_code in (400, 404)
        assert error_code(response) in ("MANIFEST_UNKNOWN", "DIGEST_INVALID")


def test_verify_passes_on_intact_blobs(client):
    push_artifact(client, "reports", "v1", files=FILES)
    response = client.post("/api/v1/repositories/reports/artifacts/v1/verify")
    assert response.status_code == 200
    report = response.json()
    conforms(report, "Verification")
    assert report["ok"] is True
    kinds = sorted(check["kind"] for check in report["checks"])
    assert kinds == ["config", "file", "file", "manifest"]
    for check in report["checks"]:
        assert check["actual"] == check["expected"] or check["expected"]["blake3"] is None


def test_verify_reports_each_corrupted_and_missing_blob(client_factory):
    driver = MemoryDriver()
    client = client_factory(driver)
    push_artifact(client, "reports", "v1", files=FILES)
    corrupted = Digest.parse(sha256(FILES["report.html"]))
    missing = Digest.parse(sha256(FILES["data/results.json"]))
    asyncio.run(driver.put(layout.blob_data(corrupted), b"<html>NO</html>"))
    asyncio.run(driver.delete(layout.blob_data(missing)))
    report = client.post("/api/v1/repositories/reports/artifacts/v1/verify").json()
    conforms(report, "Verification")
    assert report["ok"] is False
    by_path = {check["path"]: check for check in report["checks"]}
    html = by_path["report.html"]
    assert not html["ok"]
    assert html["actual"]["sha256"] != html["expected"]["sha256"]
    assert [p.split(":")[0] for p in html["problems"]] == ["sha256", "blake3"]
    assert f"expected {corrupted}" in html["problems"][0]
    assert by_path["data/results.json"]["actual"] is None
    assert by_path["data/results.json"]["problems"] == [
        f"missing: blob {missing} is not in storage"
    ]
    assert all(check["ok"] for check in report["checks"] if check["kind"] != "file")


def test_verify_unknown_artifact_is_manifest_unknown(client):
    push_artifact(client, "reports", "v1")
    response = client.post("/api/v1/repositories/reports/artifacts/v2/verify")
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


def test_delete_by_label_removes_exactly_those_artifacts(client):
    doomed = {
        push_artifact(client, "reports", f"a{i}", minute=i, labels={"run_id": "r-7", "n": str(i)})
        for i in range(3)
    }
    kept = push_artifact(client, "reports", "b", minute=9, labels={"run_id": "r-8"})
    response = client.delete("/api/v1/repositories/reports/artifacts?label=run_id=r-7")
    assert response.status_code == 200
    conforms(response.json(), "DeleteResult")
    assert set(response.json()["deleted"]) == doomed
    assert [a["digest"] for a in listing(client, "reports")["artifacts"]] == [kept]
    for digest in doomed:
        assert client.get(f"/v2/reports/manifests/{digest}").status_code == 404
    assert client.get("/v2/reports/manifests/a1").status_code == 404  # its tag went too
    assert client.get("/v2/reports/tags/list").json()["tags"] == ["b"]
    again = client.delete("/api/v1/repositories/reports/artifacts?label=run_id=r-7")
    assert again.json()["deleted"] == []


def test_delete_by_label_needs_a_label(client):
    push_artifact(client, "reports", "v1")
    response = client.delete("/api/v1/repositories/reports/artifacts")
    assert response.status_code == 400
    assert error_code(response) == "UNSUPPORTED"
    assert len(listing(client, "reports")["artifacts"]) == 1


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("label=no-equals-sign", "UNSUPPORTED"),
        ("label=bad%20key=1", "UNSUPPORTED"),
        ("label=a=1&label=a=2", "UNSUPPORTED"),
        ("cursor=../../etc", "UNSUPPORTED"),
        ("limit=0", "UNSUPPORTED"),
        ("limit=ten", "UNSUPPORTED"),
    ],
)
def test_bad_parameters_are_400_in_the_error_shape(client, query, code):
    push_artifact(client, "reports", "v1")
    response = client.get(f"/api/v1/repositories/reports/artifacts?{query}")
    assert response.status_code == 400
    conforms(response.json(), "Errors")
    assert error_code(response) == code


def test_invalid_repository_name_is_name_invalid(client):
    response = client.get("/api/v1/repositories/Bad/artifacts")
    assert response.status_code == 400
    assert error_code(response) == "NAME_INVALID"


def test_wrong_method_is_405_unsupported(client):
    response = client.put("/api/v1/repositories/reports/artifacts")
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"


def test_limit_above_the_maximum_is_capped(client):
    push_artifact(client, "reports", "v1")
    assert len(listing(client, "reports", limit=10**9)["artifacts"]) == 1


def test_openapi_document_is_served_and_kept_in_docs(client):
    served = client.get("/api/v1/openapi.json").json()
    assert served == document()
    assert json.loads((ROOT / "docs" / "openapi.json").read_text()) == served, (
        "regenerate: python -m arca.api.control.openapi > docs/openapi.json"
    )
    jsonschema.Draft202012Validator.check_schema(
        {**served["components"]["schemas"]["ArtifactRecord"]}
    )


def test_every_route_is_in_the_openapi_document():
    paths = document()["paths"]
    for route in CONTROL_ROUTES:
        assert isinstance(route, Route)
        path = route.path.replace("{name:path}", "{name}")
        assert path in paths, path
        documented = {method.upper() for method in paths[path] if method != "parameters"}
        if isinstance(route.endpoint, Guarded):  # the guard lists every reachable method
            methods = set(route.endpoint.actions) - {"HEAD"}
        elif isinstance(route.endpoint, type) and issubclass(route.endpoint, HTTPEndpoint):
            methods = {
                m.upper() for m in ("get", "post", "put", "delete") if hasattr(route.endpoint, m)
            }
        else:
            methods = set(route.methods or ()) - {"HEAD"}
        assert documented == methods, path


def test_the_v2_core_never_imports_the_control_plane():
    src = ROOT / "src" / "arca"
    core = [
        *(src / "registry").glob("*.py"),
        *(src / "api").glob("*.py"),
        *(src / "formats").glob("*.py"),
    ]
    for module in core:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(
                    ("arca.control", "arca.api.control", "arca.events")
                ), module
