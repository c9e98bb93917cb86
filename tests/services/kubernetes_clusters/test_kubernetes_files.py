"""A kubernetes workload's workspace files through gpuyard's files API, over exec in its
pod (``tar``, ``find``, ``rm`` in the container, as ``kubectl cp``) against the fake API
server (tests/kube/, a test double: not Kubernetes), whose exec runs the commands for real
on a per-pod directory standing for the container's file system: uploads land in the
workspace volume, lists and downloads read them back, hostile paths and symbolic links
are refused as for docker, sizes are bounded, a pod that does not run is a 409."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE

from gpuyard.domain.kube_names import pod_name
from gpuyard.runtimes.kubernetes import files


def workspace(fake: FakeApiServer, workload_id: str) -> Path:
    """The pod's workspace volume (/workspace) as the fake keeps it on the host."""
    return fake.pod_dir(NAMESPACE, pod_name(workload_id, 0)) / "workspace"


def test_an_upload_lands_in_the_pods_workspace_and_lists_and_downloads_back(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    content = bytes(range(256)) * 1200  # binary, larger than one WebSocket message

    put = api.put(f"/api/v1/workloads/{running}/files/data/weights.bin", content=content)

    assert put.status_code == 201, put.text
    assert put.json()["path"] == "data/weights.bin"
    assert put.json()["size"] == len(content)
    assert (workspace(fake_apiserver, running) / "data" / "weights.bin").read_bytes() == content
    listed = api.get(f"/api/v1/workloads/{running}/files", params={"path": "data"})
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["data"]
    assert (entry["name"], entry["path"], entry["type"], entry["size"]) == (
        "weights.bin",
        "data/weights.bin",
        "file",
        len(content),
    )
    top = api.get(f"/api/v1/workloads/{running}/files").json()["data"]
    assert [(e["name"], e["type"]) for e in top] == [("data", "dir")]
    got = api.get(f"/api/v1/workloads/{running}/files/data/weights.bin")
    assert got.status_code == 200
    assert got.content == content


def test_files_written_in_the_container_are_listed_with_links_not_followed(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    root = workspace(fake_apiserver, running)
    root.mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text("hello")
    (root / "etc").symlink_to("/etc")

    listed = api.get(f"/api/v1/workloads/{running}/files")

    assert listed.status_code == 200, listed.text
    kinds = {e["name"]: (e["type"], e["size"]) for e in listed.json()["data"]}
    assert kinds["notes.txt"] == ("file", 5)
    assert kinds["etc"][0] == "symlink"


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "/etc/passwd", "a/./b", "a\x00b", "x" * 300 + "/f"]
)
def test_a_hostile_path_is_refused_naming_it_and_nothing_is_run(
    api: TestClient, running: str, fake_apiserver: FakeApiServer, path: str
) -> None:
    before = len(fake_apiserver.execs)

    encoded = quote(path, safe="")  # as sent: the server decodes it into the path

    listed = api.get(f"/api/v1/workloads/{running}/files", params={"path": path})
    put = api.put(f"/api/v1/workloads/{running}/files/{encoded}", content=b"x")
    read = api.get(f"/api/v1/workloads/{running}/files/{encoded}")
    deleted = api.delete(f"/api/v1/workloads/{running}/files/{encoded}")

    for response in (listed, put, read, deleted):
        assert response.status_code in (400, 422), response.text
        assert "path" in response.text
    assert len(fake_apiserver.execs) == before  # refused before any exec


def test_a_symbolic_link_on_the_path_is_refused(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    root = workspace(fake_apiserver, running)
    outside = fake_apiserver.pod_dir(NAMESPACE, pod_name(running, 0)) / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not yours")
    root.mkdir(parents=True, exist_ok=True)
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "secret")

    listed = api.get(f"/api/v1/workloads/{running}/files", params={"path": "link"})
    read = api.get(f"/api/v1/workloads/{running}/files/link/secret")
    read_link = api.get(f"/api/v1/workloads/{running}/files/file-link")
    put = api.put(f"/api/v1/workloads/{running}/files/link/planted", content=b"x")
    deleted = api.delete(f"/api/v1/workloads/{running}/files/link/secret")

    for response in (listed, read, read_link, put, deleted):
        assert response.status_code == 400, response.text
        assert "symbolic link" in response.text
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]  # nothing written
    assert (outside / "secret").read_text() == "not yours"  # nor deleted


def test_a_large_upload_onto_a_link_is_refused_though_the_script_stops_reading(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    # The script refuses the path before reading its input, so the API server closes the
    # session while megabytes are still being written: the answer is its exit status
    # (400), not the broken pipe under the writes.
    root = workspace(fake_apiserver, running)
    outside = fake_apiserver.pod_dir(NAMESPACE, pod_name(running, 0)) / "outside"
    outside.mkdir()
    root.mkdir(parents=True, exist_ok=True)
    (root / "link").symlink_to(outside)

    for _ in range(3):
        put = api.put(f"/api/v1/workloads/{running}/files/link/big", content=b"x" * (16 << 20))
        assert put.status_code == 400, put.text
        assert "symbolic link" in put.text
    assert list(outside.iterdir()) == []


def test_delete_removes_a_file_and_refuses_a_full_directory(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    root = workspace(fake_apiserver, running)
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "f").write_text("x")

    full = api.delete(f"/api/v1/workloads/{running}/files/dir")
    gone = api.delete(f"/api/v1/workloads/{running}/files/dir/f")
    missing = api.delete(f"/api/v1/workloads/{running}/files/dir/f")
    emptied = api.delete(f"/api/v1/workloads/{running}/files/dir")

    assert full.status_code == 409, full.text
    assert gone.status_code == 204, gone.text
    assert missing.status_code == 404, missing.text
    assert emptied.status_code == 204, emptied.text
    assert list(root.iterdir()) == []


def test_a_missing_file_is_404_and_a_directory_is_not_a_file(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    (workspace(fake_apiserver, running) / "d").mkdir(parents=True)

    assert api.get(f"/api/v1/workloads/{running}/files/nope").status_code == 404
    assert api.get(f"/api/v1/workloads/{running}/files/d").status_code == 400
    put = api.put(f"/api/v1/workloads/{running}/files/d", content=b"x")
    assert put.status_code == 409, put.text


def test_a_download_over_the_limit_is_413(
    api: TestClient, running: str, fake_apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_DOWNLOAD_BYTES", 1024)
    root = workspace(fake_apiserver, running)
    root.mkdir(parents=True, exist_ok=True)
    (root / "big").write_bytes(b"x" * 200_000)

    response = api.get(f"/api/v1/workloads/{running}/files/big")

    assert response.status_code == 413, response.text


def test_files_work_over_v4_which_cannot_close_stdin(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.exec_subprotocols = ["v4.channel.k8s.io"]

    put = api.put(f"/api/v1/workloads/{running}/files/v4.txt", content=b"over v4")

    assert put.status_code == 201, put.text
    assert api.get(f"/api/v1/workloads/{running}/files/v4.txt").content == b"over v4"
    assert {r.subprotocol for r in fake_apiserver.execs} == {"v4.channel.k8s.io"}


def test_files_of_a_pod_that_does_not_run_are_a_409(
    api: TestClient, running: str, fake_apiserver: FakeApiServer
) -> None:
    fake_apiserver.kubelet_terminate(NAMESPACE, pod_name(running, 0), "Error", exit_code=1)

    response = api.get(f"/api/v1/workloads/{running}/files")

    assert response.status_code == 409, response.text
    assert "not running" in response.json()["detail"]


@pytest.fixture
def busybox_tools(fake_apiserver: FakeApiServer, tmp_path: Path) -> Path:
    """The pod's commands are busybox's (as in a busybox image): a directory of its
    applets is the only PATH of the fake's exec. Its ``find`` has no ``-printf``."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox not found on PATH; install the Debian package 'busybox'")
    tools = tmp_path / "busybox-bin"
    tools.mkdir()
    listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in listed.stdout.split():
        (tools / applet).symlink_to(busybox)
    assert (tools / "sh").exists()
    assert (tools / "find").exists()
    fake_apiserver.exec_path = str(tools)
    return tools


@pytest.mark.integration
def test_files_work_on_a_busybox_image_whose_find_has_no_printf(
    api: TestClient, running: str, fake_apiserver: FakeApiServer, busybox_tools: Path
) -> None:
    find = subprocess.run(
        [str(busybox_tools / "find"), ".", "-maxdepth", "0", "-printf", "%f"],
        capture_output=True,
        check=False,
    )
    assert find.returncode != 0  # busybox's find really lacks -printf
    content = b"\x00binary\xff" * 1000
    put = api.put(f"/api/v1/workloads/{running}/files/data/w.bin", content=content)
    assert put.status_code == 201, put.text
    root = workspace(fake_apiserver, running)
    (root / ".hidden").write_text("dot")
    (root / "tab\tname").write_text("tabbed")
    (root / "etc").symlink_to("/etc")
    (root / "empty").mkdir()

    top = api.get(f"/api/v1/workloads/{running}/files")
    inner = api.get(f"/api/v1/workloads/{running}/files", params={"path": "data"})
    empty = api.get(f"/api/v1/workloads/{running}/files", params={"path": "empty"})

    assert top.status_code == 200, top.text
    found = {e["name"]: (e["type"], e["size"]) for e in top.json()["data"]}
    assert found == {
        ".hidden": ("file", 3),
        "data": ("dir", found["data"][1]),
        "empty": ("dir", found["empty"][1]),
        "etc": ("symlink", len("/etc")),
        "tab\tname": ("file", 6),
    }
    modified = {e["name"]: e["modified_at"] for e in top.json()["data"]}
    assert abs(modified[".hidden"] - (root / ".hidden").lstat().st_mtime) < 1.0
    assert [(e["path"], e["size"]) for e in inner.json()["data"]] == [("data/w.bin", len(content))]
    assert empty.status_code == 200
    assert empty.json()["data"] == []
    got = api.get(f"/api/v1/workloads/{running}/files/data/w.bin")
    assert got.status_code == 200, got.text
    assert got.content == content
    deleted = api.delete(f"/api/v1/workloads/{running}/files/data/w.bin")
    assert deleted.status_code == 204, deleted.text
    assert not (root / "data" / "w.bin").exists()
    refused = api.get(f"/api/v1/workloads/{running}/files", params={"path": "etc"})
    assert refused.status_code == 400
    assert "symbolic link" in refused.text
    assert all(r.command[0] == "sh" for r in fake_apiserver.execs)  # busybox's sh ran them
