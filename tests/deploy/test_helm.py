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
    assert (settings.server.log_format, settings.server.access_log) == ("json", True)


def test_pods_are_annotated_for_prometheus_scrapes():
    pod = render({})["Deployment"][0]["spec"]["template"]["metadata"]["annotations"]
    assert pod["prometheus.io/scrape"] == "true"
    assert pod["prometheus.io/path"] == "/metrics"
    assert pod["prometheus.io/port"] == "5000"


def test_credentials_come_from_an_existing_secret():
    objects = render({"storage": {"s3": {"existingSecret": "arca-s3"}}})
    container = objects["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "arca-s3"}}]


def test_filesystem_driver_means_one_replica_and_a_volume():
    objects = render({"storage": {"driver": "filesystem"}, "replicaCount": 1})
    assert objects["PersistentVolumeClaim"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    with pytest.raises(helm_python.HelmError, match="replicaCount to 1"):
        render({"storage": {"driver": "filesystem"}, "replicaCount": 2})


def _config(
    objects: dict[str, list[dict[str, Any]]], tmp_path: Path, environ: dict[str, str] | None = None
) -> Any:
    """The rendered config as arca loads it, with the pod's environment (its secrets)."""
    from arca.config import load_settings

    config = tmp_path / "arca.toml"
    config.write_text(objects["ConfigMap"][0]["data"]["arca.toml"])
    return load_settings(environ or {}, config)


def _lower(environ: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("ARCA_STORAGE_AZURE_").lower(): v for k, v in environ.items()}


def test_n_replicas_on_gcs_with_workload_identity(tmp_path):
    values = {
        "replicaCount": 4,
        "storage": {
            "driver": "gcs",
            "gcs": {
                "bucket": "builds",
                "redirect": True,
                "signingServiceAccount": "arca@proj.iam.gserviceaccount.com",
            },
        },
        "serviceAccount": {
            "create": True,
            "annotations": {"iam.gke.io/gcp-service-account": "arca@proj.iam.gserviceaccount.com"},
        },
    }
    objects = render(values)
    deployment = objects["Deployment"][0]
    assert deployment["spec"]["replicas"] == 4
    assert "strategy" not in deployment["spec"]  # rolling updates: no single volume
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "reg-arca"
    account = objects["ServiceAccount"][0]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("arca@")
    settings = _config(objects, tmp_path)
    assert settings.storage.driver == "gcs"
    options = settings.storage.driver_options()
    assert options["bucket"] == "builds"
    assert options["signing_service_account"] == "arca@proj.iam.gserviceaccount.com"
    assert "credentials_file" not in options
    assert "PersistentVolumeClaim" not in objects


def test_gcs_key_secret_is_mounted_and_named_in_the_config(tmp_path):
    objects = render({"storage": {"driver": "gcs", "gcs": {"bucket": "b", "keySecret": "gkey"}}})
    pod = objects["Deployment"][0]["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "gcs-key"]
    assert volume["secret"]["secretName"] == "gkey"
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    options = _config(objects, tmp_path).storage.driver_options()
    assert options["credentials_file"] == mounts["gcs-key"] + "/key.json"


def test_n_replicas_on_azure_with_a_connection_string_secret(tmp_path):
    values = {
        "replicaCount": 2,
        "storage": {"driver": "azure", "azure": {"container": "reg", "existingSecret": "az"}},
    }
    objects = render(values)
    deployment = objects["Deployment"][0]
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "az"}}]
    # The secret supplies the connection string; without it the config is incomplete.
    secret = {"ARCA_STORAGE_AZURE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    options = _config(objects, tmp_path, secret).storage.driver_options()
    assert options == {"container": "reg", "prefix": "", "redirect": False, **_lower(secret)}


def test_azure_with_managed_identity_needs_an_account_url(tmp_path):
    values = {
        "storage": {
            "driver": "azure",
            "azure": {"container": "reg", "accountUrl": "https://acct.blob.core.windows.net"},
        },
        "podLabels": {"azure.workload.identity/use": "true"},
    }
    objects = render(values)
    template = objects["Deployment"][0]["spec"]["template"]
    assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert "envFrom" not in template["spec"]["containers"][0]
    options = _config(objects, tmp_path).storage.driver_options()
    assert options["account_url"] == "https://acct.blob.core.windows.net"
    with pytest.raises(helm_python.HelmError, match="accountUrl"):
        render({"storage": {"driver": "azure", "azure": {"container": "reg"}}})


def test_auth_values_render_a_policy_arca_accepts(tmp_path):
    from arca.auth.settings import groups_of, oidc_of, policy_of
    from arca.config import load_settings

    values = {
        "readOnly": True,
        "auth": {
            "enabled": True,
            "htpasswdSecret": "arca-users",
            "signingKeysSecret": "arca-keys",
            "admins": ["root"],
            "groups": {"ci": ["builder"]},
            "policies": [
                {"repositories": ["team/**"], "groups": ["ci"], "actions": ["pull", "push"]},
                {"repositories": ["public/**"], "anonymous": ["pull"]},
            ],
            "oidc": {
                "issuer": "https://issuer.test",
                "jwksUrl": "https://issuer.test/jwks",
                "audience": "arca",
                "claimGroups": [{"claim": "repository", "value": "org/app", "groups": ["ci"]}],
            },
        },
    }
    objects = render(values)
    config = tmp_path / "arca.toml"
    config.write_text(objects["ConfigMap"][0]["data"]["arca.toml"])
    settings = load_settings({}, config)
    assert settings.server.read_only is True
    auth = settings.auth
    assert auth.enabled is True
    assert auth.htpasswd == "/etc/arca/auth/htpasswd"
    assert auth.signing_keys == "/etc/arca/keys"
    assert groups_of(auth) == {"builder": {"ci"}}
    assert len(policy_of(auth).entries) == 2
    oidc = oidc_of(auth)
    assert oidc is not None
    assert oidc.claim_groups[0].groups == {"ci"}
    pod = objects["Deployment"][0]["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["htpasswd"] == "/etc/arca/auth"
    assert mounts["signing-keys"] == "/etc/arca/keys"
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"htpasswd": "arca-users", "signing-keys": "arca-keys"}


def test_auth_is_off_in_the_default_render(tmp_path):
    from arca.config import load_settings

    config = tmp_path / "arca.toml"
    config.write_text(render()["ConfigMap"][0]["data"]["arca.toml"])
    assert load_settings({}, config).auth.enabled is False
