"""Directories kept whole: empty directories, the executable bit and symlinks round-trip;
links leading outside, special files and unsafe paths are refused with a clear error."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from arca.app import create_app
from arca.client import ArcaClient
from arca.client.errors import ServerError, UsageError
from arca.formats import cbor
from arca.formats.artifact import ARTIFACT_MEDIA_TYPE
from arca.storage.drivers.memory import MemoryDriver


@pytest.fixture
def client():
    transport = httpx.ASGITransport(app=create_app(driver=MemoryDriver()))
    with ArcaClient("http://arca.test", transport=transport) as client:
        yield client


def build_tree(root: Path) -> Path:
    """Nested empty directories, an executable script, links inside, unicode names."""
    (root / "bin").mkdir(parents=True)
    script = root / "bin" / "run.sh"
    script.write_text("#!/bin/sh\necho ok\n")
    script.chmod(0o755)
    (root / "données").mkdir()
    (root / "données" / "résumé.txt").write_text("é\n")
    (root / "cache" / "empty" / "nested").mkdir(parents=True)
    (root / "logs").mkdir()
    (root / "bin" / "latest").symlink_to("run.sh")
    (root / "docs").symlink_to("données")
    (root / "up").mkdir()
    (root / "up" / "to-script").symlink_to("../bin/run.sh")
    (root / "dangling").symlink_to("not-there-yet")
    return root


def snapshot(root: Path) -> dict[str, tuple[str, object]]:
    """Every entry under root: kind and what matters about it (content, exec bit, target)."""
    found: dict[str, tuple[str, object]] = {}
    for parent, names, files in os.walk(root):
        for entry in [*names, *files]:
            local = Path(parent) / entry
            path = local.relative_to(root).as_posix()
            mode = local.lstat().st_mode
            if stat.S_ISLNK(mode):
                found[path] = ("link", os.readlink(local))
            elif stat.S_ISDIR(mode):
                found[path] = ("dir", None)
            else:
                found[path] = ("file", (local.read_bytes(), bool(mode & stat.S_IXUSR)))
    return found


def test_a_tree_round_trips_exactly(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    pushed = client.push_directory("tools/build", tree, tag="v1")
    assert pushed.artifact.directories == ("cache/empty/nested", "logs")
    assert {link.path: link.target for link in pushed.artifact.links} == {
        "bin/latest": "run.sh",
        "dangling": "not-there-yet",
        "docs": "données",
        "up/to-script": "../bin/run.sh",
    }
    client.pull("tools/build", "v1", tmp_path / "back")
    assert snapshot(tmp_path / "back") == snapshot(tree)
    back = tmp_path / "back"
    assert (back / "up" / "to-script").read_text() == "#!/bin/sh\necho ok\n"
    assert os.access(back / "bin" / "run.sh", os.X_OK)
    assert not os.access(back / "données" / "résumé.txt", os.X_OK)


def test_pulled_files_get_the_usual_modes(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    client.push_directory("tools/build", tree, tag="v1")
    old = os.umask(0o022)
    try:
        client.pull("tools/build", "v1", tmp_path / "back")
    finally:
        os.umask(old)
    mode = lambda path: stat.S_IMODE((tmp_path / "back" / path).stat().st_mode)  # noqa: E731
    assert mode("bin/run.sh") == 0o755
    assert mode("données/résumé.txt") == 0o644


def test_pulling_again_over_a_previous_pull_replaces_files_and_links(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    client.push_directory("tools/build", tree, tag="v1")
    client.pull("tools/build", "v1", tmp_path / "back")
    client.pull("tools/build", "v1", tmp_path / "back")
    assert snapshot(tmp_path / "back") == snapshot(tree)
    assert not list((tmp_path / "back").rglob(".arca-*"))  # no temporary left


def test_a_link_pointing_outside_is_refused_at_push(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    (tree / "escape").symlink_to("../../etc/passwd")
    with pytest.raises(UsageError, match=r"link 'escape' -> '../../etc/passwd' points outside"):
        client.push_directory("tools/build", tree, tag="v1")


def test_an_absolute_link_is_refused_at_push(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    (tree / "abs").symlink_to("/etc/passwd")
    with pytest.raises(UsageError, match="an absolute target cannot be pushed"):
        client.push_directory("tools/build", tree, tag="v1")


def test_a_link_leaving_through_another_link_is_refused_at_push(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    (tree / "out").symlink_to("../outside")
    (tree / "via").symlink_to("out/secret")  # lexically inside, really outside
    with pytest.raises(UsageError, match="points outside"):
        client.push_directory("tools/build", tree, tag="v1")


def test_a_special_file_is_refused_at_push(client, tmp_path):
    tree = build_tree(tmp_path / "tree")
    os.mkfifo(tree / "pipe")
    with pytest.raises(UsageError, match="pipe is a special file"):
        client.push_directory("tools/build", tree, tag="v1")


def test_a_document_with_unsafe_paths_from_a_hostile_registry_writes_nothing(tmp_path):
    """A registry that is not arca may serve any bytes as the CBOR view."""
    files: list[Any] = [
        {
            "path": path,
            "mediaType": "text/plain",
            "size": 1,
            "sha256": "sha256:" + "0" * 64,
            "blake3": "blake3:" + "0" * 64,
        }
        for path in ("../escape.txt", "/etc/abs.txt")
    ]
    document = cbor.encode(
        {"format": 1, "name": "x", "version": "", "labels": {}, "metadata": None, "files": files}
    )
    hostile = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=document, headers={"Content-Type": ARTIFACT_MEDIA_TYPE}
        )
    )
    with (
        ArcaClient("http://evil.test", transport=hostile) as client,
        pytest.raises(ServerError, match="is not a valid file path"),
    ):
        client.pull("x", "v1", tmp_path / "out" / "inner")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()
