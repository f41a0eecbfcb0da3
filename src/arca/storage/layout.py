"""Where everything lives in storage: the one module that builds object paths.

```
blobs/<alg>/<hh>/<hex>/data                        content, immutable, shared by all repos
blobs/<alg>/<hh>/<hex>/meta                        size, sha256, blake3, first seen (CBOR)
repositories/<name>/_layers/<alg>/<hex>/link       the blob belongs to this repository
repositories/<name>/_manifests/revisions/<alg>/<hex>/link   manifest in repo (JSON record)
repositories/<name>/_manifests/tags/<tag>/current/link      -> manifest digest (+ generation)
repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link  targets it had before
repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<referrer-hex>  descriptor JSON
repositories/<name>/_index/entries/<key>           artifact index: one record per artifact
repositories/<name>/_index/labels/<label>/<value>/<key>     the same record, per label
repositories/<name>/_index/digests/<alg>-<hex>     the same record, by manifest digest
repositories/<name>/_uploads/<session_id>          marker: a session opened for this repository
uploads/<session_id>/state                         session state (CBOR)
uploads/<session_id>/data                          bytes received so far
gc/sweeping                                        present while a collector holds tombstones
gc/tombstones/<hh>/<key>/mark                      a sweep candidate: its path, run, kind (CBOR)
gc/tombstones/<hh>/<key>/verdict                   "doomed" (collector) or "rescued" (a push)
gc/runs/<run_id>                                   the last report of a run (JSON)
gc/deleted-tags/<alg>/<hex>/<name>/<tag>           a tag deleted from the manifest (restore)
trash/<run_id>/<item>/record                       what was swept, when, why (CBOR)
trash/<run_id>/<item>/<n>                          the swept objects themselves
quarantine/<alg>/<hex>/data                        a blob scrub found corrupt, moved aside
quarantine/<alg>/<hex>/record                      what scrub found (JSON)
scrub/progress                                     the shards a scrub has finished (resume)
auth/signing-key.pem                               token signing key, when none is configured
auth/robots/<name>                                 a robot token: its hashed secret and grant (JSON)
events/log/<block>/<commit>                        one commit of the event log (JSON)
events/segments/<block>/<first>-<last>             commits compacted into one object
events/webhooks/<webhook>/cursor                   the last event delivered
events/webhooks/<webhook>/dead/<event-id>          events given up on, with the error
events/webhooks/<webhook>/redeliver/<event-id>     dead letters queued again
leases/<lease>/<generation>                        who holds a lease (webhooks, GC…), until when
pins/<name>/_digests/<alg>-<hex>                   a pinned manifest: who, when, why (JSON)
pins/<name>/_tags/<tag>                            a pinned tag: whatever it points at is kept
retention/applying/<run_id>                        an apply's deletions while it runs (JSON)
retention/runs/<run_id>                            the report of a finished apply (JSON)
```

`<key>` of a tombstone is the sha256 of the object's path, so any object (a link, a
revision, blob data) has one fixed place for its tombstone (docs/gc.md).

Repository names may contain `/`; their components never start with `_` (the name
grammar forbids it), so `_layers`, `_manifests`… never collide with a nested name.

The artifact index (`arca.control.index`) keeps one small immutable object per
artifact, named by `index_key`: the creation time inverted (so names sort
newest-first) then the manifest digest, so listing is `list(prefix, start_after)`
and a push or delete writes or removes its own objects, never a shared one. A label
value may hold any character, so `<value>` is `v=` and the value percent-encoded
(with `.` and `~` too), or `h=` and its sha256 when that would be over 200 bytes.

The event log (`arca.events.log`) is a dense sequence of commits, each one immutable
object written create-only at the next number: `<commit>` is 12 digits so a listing
is commit order, and `<block>` (`commit // EVENT_BLOCK`, 12 digits) keeps a directory
to a listable size.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from arca.errors import DigestInvalid
from arca.formats.digest import Digest

BLOBS = "blobs"
REPOSITORIES = "repositories"
UPLOADS = "uploads"
GC = "gc"
TRASH = "trash"
QUARANTINE = "quarantine"
SCRUB = "scrub"
EVENTS = "events"
LEASES = "leases"
PINS = "pins"
RETENTION = "retention"
EVENT_BLOCK = 10_000
"""Commits per `events/log/<block>` directory."""

# Directory names inside a repository; a repository "exists" when one of them does.
LAYERS_DIR = "_layers"
MANIFESTS_DIR = "_manifests"
REFERRERS_DIR = "_referrers"
INDEX_DIR = "_index"
UPLOADS_DIR = "_uploads"

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


def tag_index(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/index"


def tag_history(name: str, tag: str, digest: Digest) -> str:
    return f"{tag_index(name, tag)}/{digest.algorithm}/{digest.hex}/link"


def referrers(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/{REFERRERS_DIR}/{subject.algorithm}/{subject.hex}"


def referrer_entry(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers(name, subject)}/{referrer.algorithm}-{referrer.hex}"


def index(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{INDEX_DIR}"


def index_key(created: int, digest: Digest) -> str:
    """The name of an artifact's index objects: lexical order is newest-first, then digest."""
    return f"{INDEX_KEY_MAX_CREATED - created:012d}-{digest.algorithm}-{digest.hex}"


def index_key_time(created: int) -> str:
    """The first part of `index_key`: keys of artifacts created at `created` start so."""
    return f"{INDEX_KEY_MAX_CREATED - created:012d}"


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


def index_digests(name: str) -> str:
    return f"{index(name)}/digests"


def index_digest(name: str, digest: Digest) -> str:
    return f"{index_digests(name)}/{digest.algorithm}-{digest.hex}"


def upload_dir(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}"


def upload_state(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}/state"


def upload_data(session_id: str) -> str:
    return f"{UPLOADS}/{session_id}/data"


def blob_algorithms() -> str:
    """The prefix listing the digest algorithms that have blobs."""
    return BLOBS


def blob_shards(algorithm: str) -> str:
    return f"{BLOBS}/{algorithm}"


def blob_shard(algorithm: str, shard: str) -> str:
    """Every blob of `algorithm` whose hex starts with `shard` (two hex characters)."""
    return f"{BLOBS}/{algorithm}/{shard}"


def parse_blob_object(path: str) -> tuple[Digest, str] | None:
    """(digest, "data" | "meta") of a path under `blobs/`, None for anything else."""
    parts = path.split("/")
    if len(parts) != 5 or parts[0] != BLOBS or parts[4] not in ("data", "meta"):
        return None
    algorithm, shard, encoded = parts[1], parts[2], parts[3]
    digest = _digest(algorithm, encoded)
    if digest is None or not encoded.startswith(shard):
        return None
    return digest, parts[4]


def repository_child(name: str, child: str) -> str:
    """A directory entry below repository `name` (or below the root when name is "")."""
    return f"{REPOSITORIES}/{name}/{child}" if name else f"{REPOSITORIES}/{child}"


def layers(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{LAYERS_DIR}"


def parse_layer_link(name: str, path: str) -> Digest | None:
    """The digest of a `layer_link(name, digest)` path, None for anything else."""
    return _parse_link(layers(name), path)


def revisions_of(name: str, algorithm: str) -> str:
    return f"{revisions(name)}/{algorithm}"


def parse_revision_link(name: str, path: str) -> Digest | None:
    return _parse_link(revisions(name), path)


def referrers_root(name: str) -> str:
    return f"{REPOSITORIES}/{name}/{REFERRERS_DIR}"


def referrer_entry_named(name: str, subject: Digest, entry: str) -> str:
    """A referrer entry by its listed name (`<alg>-<hex>`), as `list` yields it."""
    return f"{referrers(name, subject)}/{entry}"


def parse_referrer_entry(name: str, path: str) -> tuple[Digest, Digest] | None:
    """(subject, referrer) of a `referrer_entry` path, None for anything else."""
    prefix = referrers_root(name) + "/"
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix) :].split("/")
    if len(parts) != 3:
        return None
    algorithm, _, encoded = parts[2].partition("-")
    subject = _digest(parts[0], parts[1])
    referrer = _digest(algorithm, encoded)
    return (subject, referrer) if subject and referrer else None


def index_object(name: str, relative: str) -> str:
    """An object below the artifact index's prefix, by its path relative to it."""
    return f"{index(name)}/{relative}"


def gc_sweeping() -> str:
    return f"{GC}/sweeping"


def gc_tombstones() -> str:
    return f"{GC}/tombstones"


def gc_tombstone(path: str) -> str:
    key = hashlib.sha256(path.encode()).hexdigest()
    return f"{GC}/tombstones/{key[:2]}/{key}"


def gc_tombstone_mark(path: str) -> str:
    return f"{gc_tombstone(path)}/mark"


def gc_tombstone_verdict(path: str) -> str:
    return f"{gc_tombstone(path)}/verdict"


def gc_runs() -> str:
    return f"{GC}/runs"


def gc_run(run_id: str) -> str:
    return f"{GC}/runs/{run_id}"


def deleted_tags(digest: Digest) -> str:
    return f"{GC}/deleted-tags/{digest.algorithm}/{digest.hex}"


def deleted_tag(name: str, tag: str, digest: Digest) -> str:
    return f"{deleted_tags(digest)}/{name}/{tag}"


def parse_deleted_tag(digest: Digest, path: str) -> tuple[str, str] | None:
    """(name, tag) of a `deleted_tag(name, tag, digest)` path."""
    prefix = deleted_tags(digest) + "/"
    if not path.startswith(prefix) or "/" not in path[len(prefix) :]:
        return None
    name, _, tag = path[len(prefix) :].rpartition("/")
    return name, tag


def trash() -> str:
    return TRASH


def trash_run(run_id: str) -> str:
    return f"{TRASH}/{run_id}"


def trash_record(run_id: str, item: str) -> str:
    return f"{TRASH}/{run_id}/{item}/record"


def trash_object(run_id: str, item: str, index: int) -> str:
    """The `index`-th object of a trash item (a revision goes with its referrer entry,
    blob data with its meta)."""
    return f"{TRASH}/{run_id}/{item}/{index}"


def trash_item(run_id: str, item: str) -> str:
    return f"{TRASH}/{run_id}/{item}"


def quarantine() -> str:
    return QUARANTINE


def quarantine_data(digest: Digest) -> str:
    return f"{QUARANTINE}/{digest.algorithm}/{digest.hex}/data"


def quarantine_record(digest: Digest) -> str:
    return f"{QUARANTINE}/{digest.algorithm}/{digest.hex}/record"


def scrub_progress() -> str:
    return f"{SCRUB}/progress"


def _parse_link(root: str, path: str) -> Digest | None:
    prefix = root + "/"
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix) :].split("/")
    if len(parts) != 3 or parts[2] != "link":
        return None
    return _digest(parts[0], parts[1])


def _digest(algorithm: str, encoded: str) -> Digest | None:
    try:
        return Digest.parse(f"{algorithm}:{encoded}")
    except DigestInvalid:
        return None


AUTH = "auth"
"""auth/signing-key.pem (the token key when none is configured), auth/robots/<name>."""
AUTH_SIGNING_KEY = f"{AUTH}/signing-key.pem"
AUTH_ROBOTS = f"{AUTH}/robots"


def robot(name: str) -> str:
    return f"{AUTH_ROBOTS}/{name}"


def upload_markers(name: str) -> str:
    """One empty object per upload session opened for `name` (the per-repository
    session limit counts them; they may outlive their session, see registry/upload_limits.py)."""
    return f"{repository(name)}/{UPLOADS_DIR}"


def upload_marker(name: str, session_id: str) -> str:
    return f"{upload_markers(name)}/{session_id}"


def event_log() -> str:
    return f"{EVENTS}/log"


def event_block(block: int) -> str:
    return f"{EVENTS}/log/{block:012d}"


def event_commit(commit: int) -> str:
    return f"{event_block(commit // EVENT_BLOCK)}/{commit:012d}"


def event_segments(block: int | None = None) -> str:
    base = f"{EVENTS}/segments"
    return base if block is None else f"{base}/{block:012d}"


def event_segment(first: int, last: int) -> str:
    return f"{event_segments(first // EVENT_BLOCK)}/{first:012d}-{last:012d}"


def webhook(name: str) -> str:
    return f"{EVENTS}/webhooks/{name}"


def webhook_cursor(name: str) -> str:
    return f"{webhook(name)}/cursor"


def webhook_dead_letters(name: str) -> str:
    return f"{webhook(name)}/dead"


def webhook_dead_letter(name: str, event_id: str) -> str:
    return f"{webhook_dead_letters(name)}/{event_id}"


def webhook_redeliveries(name: str) -> str:
    return f"{webhook(name)}/redeliver"


def webhook_redelivery(name: str, event_id: str) -> str:
    return f"{webhook_redeliveries(name)}/{event_id}"


def lease(name: str) -> str:
    return f"{LEASES}/{name}"


def lease_generation(name: str, generation: int) -> str:
    return f"{lease(name)}/{generation:012d}"


def pins() -> str:
    return PINS


def pins_of(name: str) -> str:
    """The pins of `name` (and of names nested below it: readers check the record)."""
    return f"{PINS}/{name}"


def pin_digest(name: str, digest: Digest) -> str:
    """A pin on one manifest of `name` (components never start with `_`: no collision)."""
    return f"{PINS}/{name}/_digests/{digest.algorithm}-{digest.hex}"


def pin_tag(name: str, tag: str) -> str:
    """A pin on a tag of `name`: what the tag points at is kept, wherever it moves."""
    return f"{PINS}/{name}/_tags/{tag}"


def retention_applying() -> str:
    return f"{RETENTION}/applying"


def retention_journal(run_id: str) -> str:
    return f"{RETENTION}/applying/{run_id}"


def retention_runs() -> str:
    return f"{RETENTION}/runs"


def retention_run(run_id: str) -> str:
    return f"{RETENTION}/runs/{run_id}"
