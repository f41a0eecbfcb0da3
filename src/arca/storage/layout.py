"""Where everything lives in storage: the one module that builds object paths.

```
blobs/<alg>/<hh>/<hex>/data                        content, immutable, shared by all repos
blobs/<alg>/<hh>/<hex>/meta                        size, sha256, blake3, first seen (CBOR)
repositories/<name>/_layers/<alg>/<hex>/link       the blob belongs to this repository
repositories/<name>/_manifests/revisions/<alg>/<hex>/link   manifest in repo (JSON record)
repositories/<name>/_manifests/tags/<tag>/current/link      -> manifest digest
repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link  previous targets
repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<referrer-hex>  descriptor JSON
repositories/<name>/_index/entries/<key>           artifact index: one record per artifact
repositories/<name>/_index/labels/<label>/<value>/<key>     the same record, per label
repositories/<name>/_index/digests/<alg>-<hex>     the same record, by manifest digest
uploads/<session_id>/state                         session state (CBOR)
uploads/<session_id>/data                          bytes received so far
```

Repository names may contain `/`; their components never start with `_` (the name
grammar forbids it), so `_layers`, `_manifests`… never collide with a nested name.

The artifact index (`arca.control.index`) keeps one small immutable object per
artifact, named by `index_key`: the creation time inverted (so names sort
newest-first) then the manifest digest, so listing is `list(prefix, start_after)`
and a push or delete writes or removes its own objects, never a shared one. A label
value may hold any character, so `<value>` is `v=` and the value percent-encoded
(with `.` and `~` too), or `h=` and its sha256 when that would be over 200 bytes.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from arca.formats.digest import Digest

BLOBS = "blobs"
REPOSITORIES = "repositories"
UPLOADS = "uploads"

# Directory names inside a repository; a repository "exists" when one of them does.
LAYERS_DIR = "_layers"
MANIFESTS_DIR = "_manifests"
REFERRERS_DIR = "_referrers"
INDEX_DIR = "_index"

INDEX_KEY_MAX_CREATED = 253402300799
"""9999-12-31T23:59:59Z, the latest `created` the artifact format allows."""
INDEX_KEY = re.compile(r"\d{12}-[a-z0-9]+-[a-f0-9]{64,128}")
_LABEL_VALUE_MAX = 200


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


def index(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{INDEX_DIR}"


def index_key(created: int, digest: Digest) -> str:
    """The name of an artifact's index objects: lexical order is newest-first, then digest."""
    return f"{INDEX_KEY_MAX_CREATED - created:012d}-{digest.algorithm}-{digest.hex}"


def index_entries(name: str) -> str:
    return f"{index(name)}/entries"


def index_entry(name: str, key: str) -> str:
    return f"{index_entries(name)}/{key}"


def index_label(name: str, label: str, value: str) -> str:
    """The prefix of the entries carrying `label=value` (label keys are path-safe)."""
    encoded = "v=" + quote(value, safe="").replace(".", "%2E").replace("~", "%7E")
    if len(encoded) > _LABEL_VALUE_MAX:
        encoded = "h=" + hashlib.sha256(value.encode()).hexdigest()
    return f"{index(name)}/labels/{label}/{encoded}"


def index_label_entry(name: str, label: str, value: str, key: str) -> str:
    return f"{index_label(name, label, value)}/{key}"


def index_digest(name: str, digest: Digest) -> str:
    return f"{index(name)}/digests/{digest.algorithm}-{digest.hex}"


def upload_dir(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}"


def upload_state(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}/state"


def upload_data(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}/data"
