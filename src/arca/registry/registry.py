"""The registry's services wired over one driver: what the api layer talks to."""

from __future__ import annotations

from arca.config import Settings
from arca.registry.artifacts import ArtifactStore
from arca.registry.blobs import BlobStore
from arca.registry.catalog import Catalog
from arca.registry.events import Publisher
from arca.registry.manifests import ManifestStore
from arca.registry.protection import Immutability
from arca.registry.quotas import Quotas
from arca.registry.referrers import ReferrerStore
from arca.registry.reuse import Reuse
from arca.registry.tags import TagStore
from arca.registry.uploads import UploadStore
from arca.storage.driver import Driver


class Registry:
    def __init__(self, driver: Driver, settings: Settings) -> None:
        self.driver = driver
        self.settings = settings
        self.reuse = Reuse(driver, settings.gc.grace_seconds)
        self.events = Publisher()  # sinks are wired by create_app
        self.blobs = BlobStore(driver, self.reuse, self.events)
        self.uploads = UploadStore(
            driver,
            self.blobs,
            max_blob_bytes=settings.limits.blob_max_bytes,
            sessions_per_repository=settings.limits.upload_sessions_per_repository,
            events=self.events,
        )
        self.tags = TagStore(driver, self.events, Immutability(settings.immutability))
        self.referrers = ReferrerStore(driver)
        self.manifests = ManifestStore(
            driver,
            self.blobs,
            self.tags,
            self.referrers,
            self.reuse,
            max_bytes=settings.limits.manifest_max_bytes,
            events=self.events,
            pull_sample_rate=settings.events.pull_sample_rate,
        )
        self.quotas: Quotas | None = None
        if settings.quotas:
            self.quotas = Quotas(
                driver,
                self.blobs,
                self.manifests,
                settings.quotas,
                settings.protection.usage_cache_seconds,
            )
            self.manifests.quotas = self.uploads.quotas = self.quotas
            self.events.followers.append(self.quotas)
        self.artifacts = ArtifactStore(self.blobs, self.manifests)
        self.catalog = Catalog(driver)
