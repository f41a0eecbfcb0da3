"""_catalog over a filesystem root that holds things arca never wrote."""

from __future__ import annotations

import logging
import os

from arca.storage.drivers.filesystem import FilesystemDriver
from tests.api.helpers import push_blob


def test_catalog_skips_and_logs_what_is_not_a_repository(client_factory, tmp_path, caplog):
    root = tmp_path / "data"
    client = client_factory(FilesystemDriver(str(root)))
    push_blob(client, "team/app", b"layer")
    push_blob(client, "zeta", b"layer")
    repositories = root / "repositories"
    outside = tmp_path / "outside"
    (outside / "_layers").mkdir(parents=True)
    os.symlink(outside, repositories / "evil")  # leads out of the storage root
    os.symlink(outside, repositories / "team" / "link")
    (repositories / "Upper" / "_layers").mkdir(parents=True)  # not a valid name
    (repositories / "has space" / "_manifests").mkdir(parents=True)
    (repositories / "stray-file").write_bytes(b"not a directory")

    with caplog.at_level(logging.WARNING, logger="arca"):
        response = client.get("/v2/_catalog")

    assert response.status_code == 200, response.text
    assert response.json() == {"repositories": ["team/app", "zeta"]}
    skipped = [r for r in caplog.records if "repositories/" in str(getattr(r, "path", ""))]
    logged = {r.path for r in skipped}
    assert {
        "repositories/evil",
        "repositories/team/link",
        "repositories/Upper",
        "repositories/has space",
    } <= logged
    assert client.get("/v2/_catalog?n=1").json() == {"repositories": ["team/app"]}
