"""A throwaway nginx for tests, from Debian's nginx (nginx-light), on 127.0.0.1.

The master runs in the foreground (``daemon off``) with a temp prefix: its config, PID
file, logs and temp paths all live in the temp dir. Its ``http`` block includes
``routes.conf``, the file per-user routing rewrites (GPUYARD_ROUTING_NGINX_CONF); until
then that file holds a bare server on the fixture's port, so the port answers from the
start. It is stopped by its PID (SIGTERM: nginx's fast shutdown, which does not wait for open
WebSockets).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from .local_server import HOST, LocalServer, ServerError, ServerUnavailable, log_tail, port_is_open

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class NginxUnavailable(ServerUnavailable):
    """No nginx binary."""


def find_nginx() -> Path:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        raise NginxUnavailable("nginx not found; install the Debian package 'nginx-light'")
    return Path(found)


class NginxServer(LocalServer):
    """nginx in a temp prefix; :attr:`routes_conf` is the file routing writes."""

    kind = "nginx"

    def __init__(self) -> None:
        super().__init__()
        self.binary: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def routes_conf(self) -> Path:
        return self.directory / "routes.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

    def check_available(self) -> None:
        self.binary = find_nginx()

    def _launch(self, port: int) -> None:
        assert self.binary is not None
        directory = self.directory
        temp_paths = "\n".join(
            f"    {kind}_temp_path {directory}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            "daemon off;\n"
            "master_process on;\n"
            "worker_processes 1;\n"
            f"pid {self.pid_file};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    access_log off;\n"
            f"{temp_paths}\n"
            f"    include {self.routes_conf};\n"
            "}\n",
            encoding="utf-8",
        )
        self.routes_conf.write_text(
            f"server {{\n    listen {HOST}:{port};\n    location / {{ return 404; }}\n}}\n",
            encoding="utf-8",
        )
        command = [str(self.binary), "-p", str(directory), "-c", str(directory / "nginx.conf")]
        with (directory / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT
            )
        self._watch_pid(process.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_is_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                text = log_tail(self.error_log) + "\n" + log_tail(directory / "stderr.log")
                raise ServerError(
                    f"nginx did not listen on {HOST}:{port}\n{text}",
                    port_in_use="Address already in use" in text,
                )
            time.sleep(0.02)
        self._process = process

    def worker_pids(self) -> set[int]:
        """The master's children now (its workers), from /proc."""
        master = self.pid
        children: set[int] = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[1]) == master:
                children.add(int(stat.parent.name))
        return children

    def wait_for_reload(self, old_workers: set[int], timeout_s: float = 15.0) -> None:
        """Wait until every worker of ``old_workers`` (taken before a HUP) has exited and
        new ones serve: until then a new connection may still reach an old worker, which
        answers with the old config."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.worker_pids()
            if now and not now & old_workers:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx did not reload: workers {now}, old {old_workers}")
            time.sleep(0.02)

    def reloads_seen(self) -> int:
        """How many reload signals the master has acted on so far (from its error log)."""
        try:
            text = self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return text.count("signal 1 (SIGHUP) received")

    def _shutdown(self) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
