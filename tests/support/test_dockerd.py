"""DockerServer really runs containers, publishes ports on 127.0.0.1 and leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .dockerd import DockerServer, DockerUnavailable, busybox_rootfs_tar, find_binaries
from .local_server import free_port, start_or_skip

CHILD = """
import json, os, signal
from support.dockerd import DockerServer
server = DockerServer().start()
client = server.client()
container = client.containers.run(server.image, ["sleep", "600"], detach=True)
container.reload()
pid = int(container.attrs["State"]["Pid"])
status = open(f"/proc/{pid}/status").read()
shim = int(status.split("PPid:")[1].split()[0])
info = {"dir": str(server.directory), "bridge": server.bridge, "pid": pid, "shim": shim,
        "id": container.id}
print(json.dumps(info), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _bridge_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is dead for our purpose
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return False


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.slow
def test_daemon_runs_publishes_and_stops_cleanly() -> None:
    with start_or_skip(DockerServer()) as server:
        directory, bridge = server.directory, server.bridge
        client = server.client()
        port = free_port()
        container = client.containers.run(
            server.image,
            ["httpd", "-f", "-p", "80", "-h", "/etc"],
            detach=True,
            ports={"80/tcp": ("127.0.0.1", port)},
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/passwd", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert answer.text.startswith("root:x:0:0")
        assert len(str(server.socket_path)) < 60
        assert client.info()["Name"]
        container.reload()
        assert container.status == "running"
        client.close()

    assert not server.running
    assert not directory.exists()
    assert not _bridge_exists(bridge)


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.slow
def test_guard_tears_down_daemon_containers_and_bridge_when_killed() -> None:
    try:
        find_binaries()
    except DockerUnavailable as missing:
        pytest.skip(str(missing))
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -9, child.stderr
    started = json.loads(child.stdout)

    deadline = time.monotonic() + 30
    while (
        Path(started["dir"]).exists() or _bridge_exists(started["bridge"]) or _alive(started["pid"])
    ):
        assert time.monotonic() < deadline, f"still there after its interpreter died: {started}"
        time.sleep(0.1)


def test_rootfs_has_busybox_and_its_applets(tmp_path: Path) -> None:
    import io
    import tarfile

    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake")
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar(busybox))) as tar:
        names = tar.getnames()
        assert "bin/busybox" in names
        assert tar.getmember("bin/httpd").linkname == "busybox"
        assert "etc/passwd" in names


def test_missing_dockerd_raises_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("shutil.which", lambda *_args, **_kwargs: None)
    with pytest.raises(DockerUnavailable, match=r"docker\.io"):
        find_binaries()
