"""The /v2 route table: one line per endpoint, tagged with its distribution-spec id.

Repository names contain `/`, so `{name:path}` is greedy and more specific routes
(uploads before blobs) come first.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from arca.api import listings
from arca.api.blobs import BlobEndpoint
from arca.api.manifests import ManifestEndpoint
from arca.api.uploads import UploadEndpoint, UploadStartEndpoint

V2_ROUTES: list[BaseRoute] = [
    Route("/v2/", listings.base, methods=["GET"]),  # end-1
    Route("/v2", listings.base, methods=["GET"]),  # end-1 without the slash
    Route("/v2/_catalog", listings.catalog, methods=["GET"]),  # catalog (not in v1.1 core)
    Route("/v2/{name:path}/blobs/uploads/", UploadStartEndpoint),  # end-4a end-4b end-11
    Route("/v2/{name:path}/blobs/uploads", UploadStartEndpoint),  # same, without the slash
    Route("/v2/{name:path}/blobs/uploads/{session_id}", UploadEndpoint),  # end-5 6 13, cancel
    Route("/v2/{name:path}/blobs/{digest}", BlobEndpoint),  # end-2 end-10
    Route("/v2/{name:path}/manifests/{reference}", ManifestEndpoint),  # end-3 end-7 end-9
    Route("/v2/{name:path}/tags/list", listings.tags_list, methods=["GET"]),  # end-8a end-8b
    Route("/v2/{name:path}/referrers/{digest}", listings.referrers, methods=["GET"]),  # end-12
]
