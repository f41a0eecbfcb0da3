"""POST /api/v1/gc: a run on demand, its report, its dry run, one collector at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time

from arca.config import GcSettings, Settings
from arca.lifecycle.gc import LEASE_NAME
from arca.storage.drivers.memory import MemoryDriver
from arca.storage.lease import Lease
from tests.control.test_api import conforms

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(client, name: str, tag: str, layer: bytes) -> str:
    config = b"{}"
    for blob in (config, layer):
        response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest(blob)}", content=blob)
        assert response.status_code == 201
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    response = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": MANIFEST}
    )
    assert response.status_code == 201
    return digest(manifest)


def test_gc_endpoint_reports_then_sweeps_what_the_dry_run_listed(client_factory) -> None:
    settings = dataclasses.replace(Settings(), gc=GcSettings(grace_seconds=1, untagged="delete"))
    client = client_factory(settings=settings)
    push(client, "app", "v1", b"kept")
    gone = push(client, "app", "v2", b"gone")
    assert client.delete("/v2/app/manifests/v2").status_code == 202
    time.sleep(1.2)

    dry = client.post("/api/v1/gc?dry_run=true")
    assert dry.status_code == 200
    conforms(dry.json(), "GcReport")
    assert dry.json()["dry_run"] is True
    real = client.post("/api/v1/gc")
    conforms(real.json(), "GcReport")
    swept = {(o["kind"], o["path"]) for o in real.json()["swept"]}
    assert swept == {(o["kind"], o["path"]) for o in dry.json()["swept"]}
    assert ("revision", f"repositories/app/_manifests/revisions/sha256/{gone[7:]}/link") in swept
    assert all("trash_id" in o for o in real.json()["swept"])
    assert client.get(f"/v2/app/manifests/{gone}").status_code == 404
    assert client.get("/v2/app/manifests/v1").status_code == 200


def test_gc_endpoint_answers_503_while_another_collector_runs(client_factory) -> None:
    driver = MemoryDriver()
    client = client_factory(driver=driver)
    lease = Lease(driver, LEASE_NAME, 60)
    assert asyncio.run(lease.acquire())
    response = client.post("/api/v1/gc")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert client.post("/api/v1/gc?dry_run=maybe").status_code == 400
    assert client.post("/api/v1/gc?dry_run=true").status_code == 200  # a dry run takes no lease
