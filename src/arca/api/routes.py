"""The /v2 route table: one line per endpoint, tagged with its distribution-spec id.

Repository names contain `/`, so `{name:path}` is greedy and more specific routes
(uploads before blobs) come first. Each endpoint is wrapped by `guard` with the action
each method needs (docs/auth.md): a method not listed is refused unguarded by nobody.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from arca.api import listings
from arca.api.auth import LISTING, LOGIN, guard
from arca.api.blobs import BlobEndpoint
from arca.api.manifests import ManifestEndpoint
from arca.api.uploads import UploadEndpoint, UploadStartEndpoint
from arca.auth.policy import DELETE, PULL, PUSH

V2_ROUTES: list[BaseRoute] = [
    Route("/v2/", guard(listings.base, GET=LOGIN)),  # end-1
    Route("/v2", guard(listings.base, GET=LOGIN)),  # end-1 without the slash
    Route("/v2/_catalog", guard(listings.catalog, GET=LISTING)),  # catalog (not in v1.1 core)
    Route("/v2/{name:path}/blobs/uploads/", guard(UploadStartEndpoint, POST=PUSH)),  # end-4a 4b 11
    Route("/v2/{name:path}/blobs/uploads", guard(UploadStartEndpoint, POST=PUSH)),  # no slash
    Route(
        "/v2/{name:path}/blobs/uploads/{session_id}",  # end-5 6 13, cancel
        guard(UploadEndpoint, GET=PUSH, PATCH=PUSH, PUT=PUSH, DELETE=PUSH),
    ),
    Route("/v2/{name:path}/blobs/{digest}", guard(BlobEndpoint, GET=PULL, DELETE=DELETE)),  # 2 10
    Route(
        "/v2/{name:path}/manifests/{reference}",  # end-3 end-7 end-9
        guard(ManifestEndpoint, GET=PULL, PUT=PUSH, DELETE=DELETE),
    ),
    Route("/v2/{name:path}/tags/list", guard(listings.tags_list, GET=PULL)),  # end-8a end-8b
    Route("/v2/{name:path}/referrers/{digest}", guard(listings.referrers, GET=PULL)),  # end-12
]
