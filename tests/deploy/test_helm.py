"""The helm chart lints clean and renders what an operator expects, with no cluster."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

helm_python = pytest.importorskip("helm_python")  # in the tests group; see pyproject

CHART = Path(__file__).parents[2] / "helm" / "arca"


def render(values: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    chart = helm_python.Chart.load(CHART)
    try:
        rendered = chart.render(values or {}, name="reg", namespace="builds")
    finally:
        chart.close()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue  # NOTES.txt
        for document in yaml.safe_load_all(text):
            if document:
                by_kind.setdefault(document["kind"], []).append(document)
    return by_kind


def test_chart_lints_clean_in_strict_mode():
    report = helm_python.lint(CHART, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []
    assert report["errors"] == []


def test_default_render_is_three_replicas_on_s3_with_probes():
    objects = render()
    deployment = objects["Deployment"][0]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    config = tomllib.loads(objects["ConfigMap"][0]["data"]["arca.toml"])
    assert config["storage"]["driver"] == "s3"
    assert config["storage"]["s3"]["bucket"] == "arca"
    assert "PersistentVolumeClaim" not in objects
    assert objects["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 1


def test_rendered_config_is_a_valid_arca_config(tmp_path):
    from arca.config import load_settings

    values = {"storage": {"s3": {"endpointUrl": "http://minio:9000", "redirect": True}}}
    config = tmp_path / "arca.toml"
    config.write_text(render(values)["ConfigMap"][0]["data"]["arca.toml"])
    settings = load_settings({}, config)
    assert settings.storage.driver_options()["endpoint_url"] == "http://minio:9000"
    assert settings.storage.driver_options()["redirect"] is True


def test_credentials_come_from_an_existing_secret():
    objects = render({"storage": {"s3": {"existingSecret": "arca-s3"}}})
    container = objects["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "arca-s3"}}]


def test_filesystem_driver_means_one_replica_and_a_volume():
    objects = render({"storage": {"driver": "filesystem"}, "replicaCount": 1})
    assert objects["PersistentVolumeClaim"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    with pytest.raises(helm_python.HelmError, match="replicaCount to 1"):
        render({"storage": {"driver": "filesystem"}, "replicaCount": 2})
