"""A throwaway Docker daemon for tests, from the machine's dockerd, on a unix socket.

Debian's docker.io runs a real dockerd as root with everything of its own under a temp dir:
--data-root, --exec-root (its managed containerd lives there), --pidfile, an empty
--config-file (the host's /etc/docker/daemon.json is never read), containerd namespaces of
its own, and the API on a unix socket only (never TCP). Networking: a bridge interface of its
own (``gy`` + 8 hex, a free 10.213.N.0/24 subnet) with --iptables=false, --ip-masq=false and
--ip-forward=false, so the host's firewall and sysctls are left alone; published ports still
answer on 127.0.0.1 through docker-proxy (the userland proxy). Containers cannot reach
outside the machine (no masquerading), which is what tests want.

`image` is a busybox image made with `docker import` from busybox-static (no registry).
At stop every container is removed, dockerd is stopped, leftover mounts are unmounted and the
bridge is deleted; the exit guard does the same if the test process dies first.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
from docker.errors import DockerException
from docker.models.containers import Container

from .local_server import LocalServer, ServerError, ServerUnavailable, log_tail

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; containerd adds its own sockets below ours
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
BUSYBOX_APPLETS = (
    "sh", "httpd", "sleep", "cat", "echo", "ls", "id", "env", "pwd", "mkdir", "rm",
    "touch", "grep", "head", "tail", "wc", "seq", "true", "false", "ps", "kill", "stat",
)  # fmt: skip
TEST_IMAGE = "gpuyard-test/busybox:latest"
SUBNET_PREFIX = "10.213"


class DockerUnavailable(ServerUnavailable):
    """No dockerd / busybox-static, or not root (dockerd needs root)."""


def find_binaries() -> dict[str, Path]:
    """dockerd, ip and a statically linked busybox, or DockerUnavailable saying what to install."""
    found: dict[str, Path] = {}
    for name, package in (("dockerd", "docker.io"), ("ip", "iproute2")):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path is None:
            raise DockerUnavailable(f"{name} not found; install the Debian package {package!r}")
        found[name] = Path(path)
    busybox = next((p for p in BUSYBOX_CANDIDATES if _is_static(p)), None)
    if busybox is None:
        raise DockerUnavailable(
            "no statically linked busybox at /bin/busybox; install 'busybox-static'"
        )
    found["busybox"] = busybox
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd needs root to run (tests are not running as root)")
    return found


def _is_static(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        result = subprocess.run(["ldd", str(path)], check=False, capture_output=True, text=True)
    except FileNotFoundError:  # no ldd: trust the Debian path of busybox-static
        return True
    output = result.stdout + result.stderr
    return "not a dynamic executable" in output or "statically linked" in output


def busybox_rootfs_tar(busybox: Path) -> bytes:
    """A tar of bin/busybox plus one symlink per applet, and /workspace, /tmp, /etc."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


class DockerServer(LocalServer):
    """dockerd in a temp dir; `url` is its unix:// socket, `image` a local busybox image.

    with DockerServer() as dockerd:
        client = docker.DockerClient(base_url=dockerd.url)
        client.containers.run(dockerd.image, ["echo", "hi"], remove=True)
    """

    kind = "dockerd"

    def __init__(self) -> None:
        super().__init__()
        self._binaries: dict[str, Path] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._bridge = f"gy{random.getrandbits(32):08x}"
        self.image = TEST_IMAGE

    @property
    def socket_path(self) -> Path:
        return self.directory / "d.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def bridge(self) -> str:
        return self._bridge

    def client(self) -> docker.DockerClient:
        """A Docker SDK client for this daemon (close it when done)."""
        return docker.DockerClient(base_url=self.url, timeout=60)

    @property
    def _log(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def _exec_root(self) -> Path:
        return self.directory / "x"

    def check_available(self) -> None:
        self._binaries = find_binaries()

    def _launch_on_free_port(self) -> int:
        # dockerd listens on a unix socket only; 0 stands for "no TCP port".
        self._launch(0)
        return 0

    def _prepare(self, directory: Path) -> None:
        if len(str(self.socket_path)) > MAX_SOCKET_PATH - 40:
            raise ServerError(f"temp dir {directory} is too long for unix sockets; set TMPDIR=/tmp")
        (directory / "daemon.json").write_text("{}\n")
        self._ip("link", "add", "name", self._bridge, "type", "bridge")
        self._ip("addr", "add", f"{_free_subnet()}.1/24", "dev", self._bridge)
        self._ip("link", "set", self._bridge, "up")

    def _emergency_commands(self) -> list[list[str]]:
        # The guard SIGKILLs dockerd first. Then, for every task of our containerd: kill the
        # container's init (its whole PID namespace dies with it) and its shim; then our
        # containerd, our mounts, the containers' cgroups and the bridge.
        tasks = self._exec_root / "containerd" / "daemon" / "io.containerd.runtime.v2.task"
        containerd_pid = self._exec_root / "containerd" / "containerd.pid"
        script = (
            f'for t in {tasks}/*/*; do [ -d "$t" ] || continue; '
            'kill -9 "$(cat "$t/init.pid")" 2>/dev/null; done; '
            # shims (and our containerd) are the processes working in our directory
            f'for p in /proc/[0-9]*; do case "$(readlink $p/cwd)" in {self.directory}/*) '
            'kill -9 "${p#/proc/}" 2>/dev/null;; esac; done; '
            f'kill -9 "$(cat {containerd_pid})" 2>/dev/null; sleep 0.5; '
            f'for t in {tasks}/*/*; do for c in /sys/fs/cgroup/*/docker/"${{t##*/}}"; do '
            'rmdir "$c" 2>/dev/null; done; done; '
            f"grep -o ' {self.directory}/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"
        )
        return [["sh", "-c", script], [str(self._binaries["ip"]), "link", "del", self._bridge]]

    def _launch(self, port: int) -> None:
        ns = f"gpuyard-{self._bridge}"
        command = [
            str(self._binaries["dockerd"]),
            "--host", self.url,
            "--data-root", str(self.directory / "data"),
            "--exec-root", str(self._exec_root),
            "--pidfile", str(self.directory / "d.pid"),
            "--config-file", str(self.directory / "daemon.json"),
            "--containerd-namespace", ns,
            "--containerd-plugins-namespace", f"{ns}-plugins",
            "--bridge", self._bridge,
            "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--ipv6=false",
            "--userland-proxy=true",
        ]  # fmt: skip
        with self._log.open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._watch_pid(process.pid)
        self._process = process
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._pings():
            if process.poll() is not None or time.monotonic() > deadline:
                self._terminate()
                raise ServerError(
                    f"dockerd did not start\n--- {self._log} ---\n{log_tail(self._log)}"
                )
            time.sleep(0.05)

    def _after_start(self) -> None:
        with contextlib.closing(self.client()) as client:
            repository, tag = self.image.rsplit(":", 1)
            client.api.import_image_from_data(
                busybox_rootfs_tar(self._binaries["busybox"]), repository=repository, tag=tag
            )

    def _shutdown(self) -> None:
        with contextlib.suppress(DockerException), contextlib.closing(self.client()) as client:
            containers = client.containers.list(all=True, ignore_removed=True)
            with ThreadPoolExecutor(max_workers=8) as pool:  # one by one takes seconds
                list(pool.map(_remove, containers))
        self._terminate()
        _unmount_below(self.directory)
        self._ip("link", "del", self._bridge, check=False)

    def _pings(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with contextlib.closing(self.client()) as client:
                return bool(client.ping())
        except DockerException:
            return False

    def _terminate(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _ip(self, *args: str, check: bool = True) -> None:
        result = subprocess.run(
            [str(self._binaries["ip"]), *args], check=False, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise ServerError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _remove(container: Container) -> None:
    with contextlib.suppress(DockerException):
        container.remove(force=True)


def _free_subnet() -> str:
    """A 10.213.N prefix that no interface or route on this machine uses."""
    used = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], check=False, capture_output=True, text=True
    ).stdout
    used += subprocess.run(["ip", "-4", "addr"], check=False, capture_output=True, text=True).stdout
    candidates = [n for n in range(1, 255) if f"{SUBNET_PREFIX}.{n}." not in used]
    if not candidates:
        raise ServerError(f"no free {SUBNET_PREFIX}.N.0/24 subnet for the test bridge")
    return f"{SUBNET_PREFIX}.{random.choice(candidates)}"


def _unmount_below(directory: Path) -> None:
    """Lazily unmount whatever dockerd left mounted under `directory` (deepest first)."""
    mounts = Path("/proc/mounts").read_text().splitlines()
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{directory}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
