"""Where everything lives in storage: the one module that builds object paths.

```
blobs/<alg>/<hh>/<hex>/data                        content, immutable, shared by all repos
blobs/<alg>/<hh>/<hex>/meta                        size, sha256, blake3, first seen (CBOR)
repositories/<name>/_layers/<alg>/<hex>/link       the blob belongs to this repository
repositories/<name>/_manifests/revisions/<alg>/<hex>/link   manifest in repo (JSON record)
repositories/<name>/_manifests/tags/<tag>/current/link      -> manifest digest
repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link  previous targets
repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<referrer-hex>  descriptor JSON
repositories/<name>/_pins/<tag>
uploads/<session_id>/state                         session state (CBOR)
uploads/<session_id>/data                          bytes received so far
events/<yyyy>/<mm>/<dd>/<timestamp>-<id>.cbor      one immutable object per event
trash/<yyyy-mm-dd>/<original path>
```

Repository names may contain `/`; their components never start with `_` (the name
grammar forbids it), so `_layers`, `_manifests`… never collide with a nested name.
"""

from __future__ import annotations

from arca.formats.digest import Digest

BLOBS = "blobs"
REPOSITORIES = "repositories"
UPLOADS = "uploads"
EVENTS = "events"
TRASH = "trash"

# Directory names inside a repository; a repository "exists" when one of them does.
LAYERS_DIR = "_layers"
MANIFESTS_DIR = "_manifests"
REFERRERS_DIR = "_referrers"
PINS_DIR = "_pins"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_data(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def blob_meta(digest: Digest) -> str:
    return f"{blob_dir(digest)}/meta"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/{LAYERS_DIR}/{digest.algorithm}/{digest.hex}/link"


def layer_links(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{LAYERS_DIR}"


def revision_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/{MANIFESTS_DIR}/revisions/{digest.algorithm}/{digest.hex}/link"


def revisions(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{MANIFESTS_DIR}/revisions"


def tags(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{MANIFESTS_DIR}/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags(name)}/{tag}"


def tag_current(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_history(name: str, tag: str, digest: Digest) -> str:
    return f"{tag_dir(name, tag)}/index/{digest.algorithm}/{digest.hex}/link"


def referrers(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/{REFERRERS_DIR}/{subject.algorithm}/{subject.hex}"


def referrer_entry(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers(name, subject)}/{referrer.algorithm}-{referrer.hex}"


def pin(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/{PINS_DIR}/{tag}"


def upload_dir(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}"


def upload_state(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}/state"


def upload_data(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}/data"
