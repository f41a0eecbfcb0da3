"""gcp-storage-emulator as the tests and benchmarks start it: in memory, minus two costs
that grow with everything a session has stored.

Usage: python tests/gcs_emulator.py start --host 127.0.0.1 --port PORT --in-memory -q

The emulator (2026.7.19) is right but slow in two places, both of which made a test
session slower the longer it ran:
- after every write it dumps the metadata of every bucket and object it holds, as
  indented JSON, to a file that an in-memory store never reads back: a conformance
  run on one emulator (thousands of objects) spent most of its time there;
- each chunk of a resumable upload is appended by copying the whole upload so far
  into a new bytes object, so a 1 GiB upload in 16 MiB chunks copied 32 GiB.
Here the dump is skipped (with --in-memory only: on disk it is the emulator's
persistence) and chunks are appended to one bytearray in place. What the emulator
answers is unchanged; its own code does everything else.
"""

from __future__ import annotations

import sys
from typing import Any


def _no_metadata_dump(self: Any) -> None:
    """The in-memory store dies with the process: there is nothing to persist for."""


def _append_in_place(
    self: Any,
    file_id: str,
    content: bytes,
    total_size: int | None = None,
    expected_start: int | None = None,
) -> bytes | None:
    """Storage.add_to_resumable_upload, appending to a bytearray instead of copying."""
    from gcp_storage_emulator import storage  # type: ignore[import-untyped]
    from gcp_storage_emulator.exceptions import BadRequest  # type: ignore[import-untyped]

    path = self._object_path(storage.RESUMABLE_DIR, self.safe_id(file_id))
    try:
        data = self._store.read_bytes(path)
    except FileNotFoundError:
        data = bytearray()
    if not isinstance(data, bytearray):
        data = bytearray(data)
    if expected_start is not None and expected_start != len(data):
        raise BadRequest(f"Invalid Content-Range start: expected {len(data)}, got {expected_start}")
    data += content or b""
    self._store.write_bytes(path, data)  # the same bytearray: stored by reference
    if total_size is None or len(data) < total_size:
        return None
    return bytes(data[:total_size])


if __name__ == "__main__":
    from gcp_storage_emulator import storage
    from gcp_storage_emulator.__main__ import main  # type: ignore[import-untyped]

    if "--in-memory" not in sys.argv[1:]:
        sys.exit("tests/gcs_emulator.py runs the emulator --in-memory only")
    storage.Storage._write_config_to_file = _no_metadata_dump
    storage.Storage.add_to_resumable_upload = _append_in_place
    sys.exit(main(sys.argv[1:]))
