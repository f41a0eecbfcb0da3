"""The registry against a model small enough to be obviously right (hypothesis).

Random sequences of push blob, push manifest (by tag or digest), tag, untag, delete
manifest, delete blob and list, over HTTP, on the memory and filesystem drivers;
after every step, what the registry answers is what the model holds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from starlette.testclient import TestClient

from arca.app import create_app
from arca.config import Settings
from arca.storage.driver import Driver
from arca.storage.drivers.filesystem import FilesystemDriver
from arca.storage.drivers.memory import MemoryDriver

NAME = "model"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYERS = [f"layer {index}".encode() for index in range(3)]
TAGS = ["latest", "v1", "v2"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(layers: tuple[int, ...]) -> bytes:
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2}
    descriptors = [
        {"mediaType": "application/octet-stream", "digest": sha256(LAYERS[i]), "size": 7}
        for i in layers
    ]
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors}
    return json.dumps(body).encode()


MANIFESTS = [manifest(layers) for layers in [(0,), (1,), (0, 2), ()]]


class RegistryModel(RuleBasedStateMachine):
    driver_name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.root: str | None = None
        driver: Driver = MemoryDriver()
        if self.driver_name == "filesystem":
            self.root = tempfile.mkdtemp(prefix="arca-model-")
            driver = FilesystemDriver(self.root, fsync=False)
        self.client = TestClient(create_app(Settings(), driver))
        self.client.__enter__()
        self.blobs: set[str] = set()
        self.manifests: set[str] = set()
        self.tags: dict[str, str] = {}
        self._push_blob(b"{}")  # the config every manifest names; never deleted

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def _push_blob(self, data: bytes) -> None:
        response = self.client.post(
            f"/v2/{NAME}/blobs/uploads/?digest={sha256(data)}", content=data
        )
        assert response.status_code == 201, response.text
        self.blobs.add(sha256(data))

    def _layers_present(self, data: bytes) -> bool:
        return all(layer["digest"] in self.blobs for layer in json.loads(data)["layers"])

    @rule(layer=st.sampled_from(LAYERS))
    def push_blob(self, layer: bytes) -> None:
        self._push_blob(layer)

    @rule(layer=st.sampled_from(LAYERS))
    def delete_blob(self, layer: bytes) -> None:
        response = self.client.delete(f"/v2/{NAME}/blobs/{sha256(layer)}")
        assert response.status_code == (202 if sha256(layer) in self.blobs else 404)
        self.blobs.discard(sha256(layer))

    @rule(data=st.sampled_from(MANIFESTS), tag=st.sampled_from([None, *TAGS]))
    def push_manifest(self, data: bytes, tag: str | None) -> None:
        digest = sha256(data)
        response = self.client.put(
            f"/v2/{NAME}/manifests/{tag or digest}",
            content=data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        if not self._layers_present(data):
            assert response.status_code == 400
            assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
            return
        assert response.status_code == 201, response.text
        self.manifests.add(digest)
        if tag is not None:
            self.tags[tag] = digest

    @rule(data=st.sampled_from(MANIFESTS), tags=st.lists(st.sampled_from(TAGS), max_size=2))
    def tag_by_digest_push(self, data: bytes, tags: list[str]) -> None:
        """Push by digest with `?tag=` (OCI 1.1): several tags in one request."""
        digest = sha256(data)
        query = "&".join(f"tag={tag}" for tag in tags)
        response = self.client.put(
            f"/v2/{NAME}/manifests/{digest}?{query}",
            content=data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        if not self._layers_present(data):
            assert response.status_code == 400
            return
        assert response.status_code == 201, response.text
        self.manifests.add(digest)
        for tag in tags:
            self.tags[tag] = digest

    @rule(tag=st.sampled_from(TAGS))
    def untag(self, tag: str) -> None:
        response = self.client.delete(f"/v2/{NAME}/manifests/{tag}")
        assert response.status_code == (202 if tag in self.tags else 404)
        self.tags.pop(tag, None)

    @rule(data=st.sampled_from(MANIFESTS))
    def delete_manifest(self, data: bytes) -> None:
        digest = sha256(data)
        response = self.client.delete(f"/v2/{NAME}/manifests/{digest}")
        assert response.status_code == (202 if digest in self.manifests else 404)
        self.manifests.discard(digest)
        self.tags = {tag: target for tag, target in self.tags.items() if target != digest}

    @rule()
    def list_tags(self) -> None:
        response = self.client.get(f"/v2/{NAME}/tags/list")
        assert response.status_code == 200, response.text
        assert (response.json()["tags"] or []) == sorted(self.tags)

    @invariant()
    def registry_answers_what_the_model_holds(self) -> None:
        accept = {"Accept": OCI_MANIFEST}
        for tag in TAGS:
            response = self.client.head(f"/v2/{NAME}/manifests/{tag}", headers=accept)
            if tag in self.tags:
                assert response.status_code == 200, tag
                assert response.headers["Docker-Content-Digest"] == self.tags[tag]
            else:
                assert response.status_code == 404, tag
        for data in MANIFESTS:
            response = self.client.get(f"/v2/{NAME}/manifests/{sha256(data)}", headers=accept)
            if sha256(data) in self.manifests:
                assert response.status_code == 200
                assert response.content == data
            else:
                assert response.status_code == 404
        for layer in LAYERS:
            response = self.client.head(f"/v2/{NAME}/blobs/{sha256(layer)}")
            assert response.status_code == (200 if sha256(layer) in self.blobs else 404)


class FilesystemRegistryModel(RegistryModel):
    driver_name = "filesystem"


MODEL_SETTINGS = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize(
    "machine", [RegistryModel, FilesystemRegistryModel], ids=["memory", "filesystem"]
)
def test_the_registry_behaves_like_its_model(machine: type[RegistryModel]) -> None:
    run_state_machine_as_test(machine, settings=MODEL_SETTINGS)
