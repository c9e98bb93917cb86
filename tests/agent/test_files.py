"""Workspace files: traversal, symbolic links, special files, sizes and quotas refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpuyard.agent.errors import PathRefused, PayloadTooLarge
from gpuyard.agent.files import Workspaces, split_path
from gpuyard.agent.models import FileEntry
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound

WID = "w1"
MIB = 1024 * 1024


@pytest.fixture
def spaces(tmp_path: Path) -> Workspaces:
    workspaces = Workspaces(
        root=tmp_path / "workloads", max_upload_bytes=MIB, default_quota_bytes=4 * MIB
    )
    workspaces.prepare(WID, storage_mib=2)
    return workspaces


def upload(spaces: Workspaces, path: str, data: bytes, chunk: int = 64 * 1024) -> FileEntry:
    job = spaces.begin_upload(WID, path)
    try:
        for start in range(0, len(data), chunk):
            job.write(data[start : start + chunk])
        return job.commit()
    finally:
        job.abort()


def read(spaces: Workspaces, path: str) -> bytes:
    fd, _size = spaces.open_file(WID, path)
    return b"".join(spaces.read_chunks(fd))


def test_upload_list_download_delete(spaces: Workspaces) -> None:
    entry = upload(spaces, "site/index.html", b"<h1>hi</h1>")

    assert (entry.path, entry.size, entry.type) == ("site/index.html", 11, "file")
    assert read(spaces, "site/index.html") == b"<h1>hi</h1>"
    assert [(e.name, e.type) for e in spaces.list_dir(WID)] == [("site", "dir")]
    assert [e.path for e in spaces.list_dir(WID, "site")] == ["site/index.html"]
    upload(spaces, "site/index.html", b"v2")  # replaces
    assert read(spaces, "site/index.html") == b"v2"
    assert spaces.used_bytes(WID) == 2
    spaces.delete(WID, "site/index.html")
    assert spaces.list_dir(WID, "site") == []


def test_workspace_is_world_writable_below_a_private_root(spaces: Workspaces) -> None:
    assert oct(spaces.directory(WID).stat().st_mode & 0o777) == oct(0o777)
    assert oct(spaces.root.stat().st_mode & 0o777) == oct(0o700)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../escape.txt", id="dotdot"),
        pytest.param("a/../../escape.txt", id="dotdot-inside"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("./a", id="dot"),
        pytest.param("a/\x00b", id="nul"),
        pytest.param("x" * 256, id="long-component"),
    ],
)
def test_traversal_is_refused_before_any_system_call(path: str) -> None:
    with pytest.raises(PathRefused) as caught:
        split_path(path)
    assert caught.value.status == 400
    assert [e.field for e in caught.value.errors] == ["path"]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret.txt").write_text("host secret")
    return target


@pytest.mark.parametrize(
    ("link", "points_to", "path"),
    [
        pytest.param("leak", "secret.txt", "leak", id="file-link"),
        pytest.param("dir", ".", "dir/secret.txt", id="directory-link"),
        pytest.param("sub/dir", ".", "sub/dir/secret.txt", id="nested-directory-link"),
    ],
)
def test_symlink_escapes_are_refused(
    spaces: Workspaces, outside: Path, link: str, points_to: str, path: str
) -> None:
    """What a container can do in /workspace: link to host paths. Never followed."""
    link_path = spaces.directory(WID) / link
    link_path.parent.mkdir(parents=True, exist_ok=True)
    link_path.symlink_to(outside / points_to)

    with pytest.raises(PathRefused, match="symbolic link"):
        read(spaces, path)
    with pytest.raises(PathRefused, match="symbolic link"):
        upload(spaces, f"{path}/new.txt" if "dir" in link else f"{link}/x", b"pwned")
    assert (outside / "secret.txt").read_text() == "host secret"
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_upload_replaces_a_link_instead_of_writing_through_it(
    spaces: Workspaces, outside: Path
) -> None:
    (spaces.directory(WID) / "leak").symlink_to(outside / "secret.txt")

    upload(spaces, "leak", b"mine")

    assert (outside / "secret.txt").read_text() == "host secret"
    assert not (spaces.directory(WID) / "leak").is_symlink()
    assert read(spaces, "leak") == b"mine"


def test_links_are_listed_and_deleted_not_followed(spaces: Workspaces, outside: Path) -> None:
    (spaces.directory(WID) / "leak").symlink_to(outside / "secret.txt")

    (entry,) = spaces.list_dir(WID)
    assert (entry.name, entry.type) == ("leak", "symlink")
    spaces.delete(WID, "leak")
    assert (outside / "secret.txt").exists()


def test_special_files_are_not_read(spaces: Workspaces) -> None:
    os.mkfifo(spaces.directory(WID) / "pipe")  # opening a FIFO for reading would block
    with pytest.raises(PathRefused, match="not a regular file"):
        read(spaces, "pipe")


@pytest.mark.parametrize(
    ("size", "message"),
    [
        pytest.param(MIB + 1, "over the limit", id="over-the-per-file-limit"),
        pytest.param(MIB, None, id="exactly-the-limit"),
    ],
)
def test_upload_size_limit(spaces: Workspaces, size: int, message: str | None) -> None:
    if message is None:
        assert upload(spaces, "big.bin", b"x" * size).size == size
        return
    with pytest.raises(PayloadTooLarge, match=message) as caught:
        upload(spaces, "big.bin", b"x" * size)
    assert caught.value.status == 413
    assert os.listdir(spaces.directory(WID)) == []  # the partial temp file is gone


def test_quota_counts_what_is_already_there(spaces: Workspaces) -> None:
    upload(spaces, "a.bin", b"x" * (MIB - 10))
    upload(spaces, "b.bin", b"x" * (MIB - 10))  # 2 MiB - 20 bytes used of the 2 MiB quota
    with pytest.raises(PayloadTooLarge, match="quota"):
        upload(spaces, "c.bin", b"x" * 100)
    with pytest.raises(PayloadTooLarge, match="quota"):
        spaces.check_upload_size(WID, 100)  # the Content-Length pre-check says the same
    upload(spaces, "a.bin", b"x" * (MIB - 10))  # replacing a file frees its own size first


def test_directory_in_the_way_is_a_conflict(spaces: Workspaces) -> None:
    upload(spaces, "d/f", b"1")
    with pytest.raises(Conflict):
        upload(spaces, "d", b"2")


def test_missing_paths_and_bad_workload_ids(spaces: Workspaces) -> None:
    with pytest.raises(NotFound):
        read(spaces, "nope.txt")
    with pytest.raises(NotFound):
        spaces.list_dir(WID, "no/such/dir")
    with pytest.raises(NotFound):
        spaces.list_dir("other")
    with pytest.raises(InvalidInput, match="workload_id"):
        spaces.list_dir("..")


def test_upload_creates_a_missing_workspace_with_the_default_quota(spaces: Workspaces) -> None:
    upload(spaces, "x.txt", b"1")
    spaces_entry = Workspaces(spaces.root, spaces.max_upload_bytes, spaces.default_quota_bytes)
    job = spaces_entry.begin_upload("fresh", "hello.txt")
    job.write(b"hi")
    job.commit()
    assert spaces.quota_bytes("fresh") == 4 * MIB
    assert spaces.remove("fresh") is True
    assert spaces.remove("fresh") is False
