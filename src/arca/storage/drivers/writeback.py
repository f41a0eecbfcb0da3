"""Start writing a file's dirty pages to disk while more of it is still being written.

A blob upload writes hundreds of MiB into the page cache and fsyncs once, at the end,
before the blob may become visible: that fsync then waits for every byte at once
(~0.3 s for 512 MiB here), and the client waits with it. Linux's `sync_file_range`
with `SYNC_FILE_RANGE_WRITE` queues the writeback of a range and returns (it waits
only when the device's queue is full), so the disk works while the next blocks
arrive; the final fsync has only the tail and the metadata left (~0.02 s here), and
the kernel holds fewer dirty pages (buffered writes are throttled less).

It guarantees nothing by itself: durability still comes from the fsync that follows.
Python's `os` has no `sync_file_range`, so it is called from libc through ctypes
(which releases the GIL); where it is missing (not Linux), `start_writeback` does
nothing and the final fsync does all the work, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

SYNC_FILE_RANGE_WRITE = 2
WRITEBACK_BYTES = 1 << 20
"""Dirty bytes of one file after which their writeback is started: every block a blob
upload writes (2 MiB), so a 4 MiB blob's first half is on its way to the disk while
the second arrives. At 8 MiB a small blob's fsync at close waited for all of it: 11 ms
on average against 1.8 ms now (64 x 4 MiB pushed by 8 clients, fsync of the data as
strace -T timed it); a 512 MiB push was no slower (docs/benchmarks.md, "Small
pushes")."""


def _load() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load()


def start_writeback(fd: int, offset: int) -> None:
    """Queue the writeback of `fd`'s bytes from `offset` to its end; errors are ignored
    (the fsync that must follow reports what matters)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, 0, SYNC_FILE_RANGE_WRITE)


def available() -> bool:
    return _sync_file_range is not None
