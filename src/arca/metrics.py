"""Every Prometheus metric arca exports, defined in one place.

Names follow the Prometheus conventions: `arca_` prefix, base units (`_seconds`,
`_bytes`), `_total` on counters. Labels carry route templates (`/v2/{name:path}/blobs/
{digest}`), never raw paths, so a registry with a million repositories still exports a
few hundred series. Later subsystems (GC, retention, webhooks) add their metrics here.

With more than one worker process, `arca serve` points `PROMETHEUS_MULTIPROC_DIR` at a
fresh directory before the workers start; prometheus-client then keeps each process's
values in files there and `/metrics` answers the sum over all workers, whichever of them
serves the scrape (docs/operations.md). The variable must be set before this module is
imported, which is why nothing below reads it at import time except prometheus-client.
"""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from arca import __version__

_MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series double the exposition and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# An upload of a large blob takes minutes; a tag listing milliseconds.
_HTTP_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
# A filesystem stat takes microseconds, an S3 request tens of milliseconds.
_STORAGE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

# The text format every Prometheus (2.x and 3.x) and every agent reads; our names need
# none of format 1.0.0's escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# -- HTTP (api/observe.py) ---------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "arca_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "arca_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response body.",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)
HTTP_RECEIVED = Counter(
    "arca_http_received_bytes_total",
    "Request body bytes received.",
    ["method", "route"],
)
HTTP_SENT = Counter(
    "arca_http_sent_bytes_total",
    "Response body bytes sent (HEAD answers send none).",
    ["method", "route"],
)
HTTP_IN_FLIGHT = Gauge(
    "arca_http_requests_in_flight",
    "Requests being served right now.",
    multiprocess_mode="livesum",
)
UPLOADS_IN_FLIGHT = Gauge(
    "arca_uploads_in_flight",
    "Blob upload requests (POST, PATCH, PUT of an upload session) receiving data right now.",
    multiprocess_mode="livesum",
)

# -- storage (storage/checked.py) --------------------------------------------------------

STORAGE_DURATION = Histogram(
    "arca_storage_operation_duration_seconds",
    "Storage driver calls by driver and operation; streamed reads and listings until"
    " their first item.",
    ["driver", "operation"],
    buckets=_STORAGE_BUCKETS,
)
STORAGE_ERRORS = Counter(
    "arca_storage_errors_total",
    "Storage driver calls that failed, by driver, operation and error class"
    " (a missing object or a lost create-only race is an answer, not an error).",
    ["driver", "operation", "error"],
)

# -- the process -------------------------------------------------------------------------

BUILD_INFO = Gauge(
    "arca_build_info",
    "Always 1; the version label says which arca is running.",
    ["version"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(__version__).set(1)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(_MULTIPROCESS_DIR))


def scrape() -> bytes:
    """The exposition text: this process's metrics, or every worker's summed."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_exited() -> None:
    """Drop this process's live gauges from the sum (called when a worker stops)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
