"""Installing a rendered routing config into a running nginx: test the candidate with
``nginx -t``, swap it in by rename, then HUP the master (which re-reads its config and
keeps the old one if it cannot load the new).

The candidate is tested on its own, inside a small wrapper config (``events {}`` and an
``http`` block that includes it) in a temporary prefix, so a broken file is caught before
it replaces the live one; the live file is never touched on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gpuyard.log import get_logger

log = get_logger(__name__)

#: How long ``nginx -t`` may take before the candidate counts as refused.
TEST_TIMEOUT_S = 30.0
#: The most of nginx's complaint kept in an error (it names the line at fault).
_MAX_COMPLAINT = 2000


class NginxConfigRefused(Exception):
    """``nginx -t`` refused the candidate; the live config was kept."""


@dataclass(frozen=True)
class NginxTarget:
    """Where the routing config lives and how to reach its nginx."""

    conf_path: Path
    pid_file: Path
    binary: str = "nginx"


def check_config(binary: str, candidate: Path) -> None:
    """Run ``nginx -t`` on ``candidate`` (an http-context file) inside a wrapper in a
    temporary prefix; raise :class:`NginxConfigRefused` with nginx's words otherwise."""
    with tempfile.TemporaryDirectory(prefix="gpuyard-nginx-test-") as prefix:
        wrapper = Path(prefix) / "nginx.conf"
        temp_paths = "\n".join(
            f"    {kind}_temp_path {prefix}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        wrapper.write_text(
            f"error_log {prefix}/error.log;\npid {prefix}/nginx.pid;\n"
            "events {}\n"
            f"http {{\n    access_log off;\n{temp_paths}\n    include {candidate};\n}}\n",
            encoding="utf-8",
        )
        try:
            done = subprocess.run(  # the binary is a setting; the arguments are ours
                [binary, "-t", "-q", "-p", prefix, "-c", str(wrapper)],
                capture_output=True,
                text=True,
                timeout=TEST_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NginxConfigRefused(f"nginx -t did not run: {exc}") from exc
    if done.returncode != 0:
        complaint = (done.stderr or done.stdout).strip()[-_MAX_COMPLAINT:]
        raise NginxConfigRefused(complaint or f"nginx -t exited with {done.returncode}")


def install_config(target: NginxTarget, text: str) -> bool:
    """Make ``text`` nginx's routing config: False when the live file already holds it;
    else test it, swap it in and signal a reload, and return True. On a refusal the live
    file stays as it was and :class:`NginxConfigRefused` says why."""
    live = target.conf_path
    try:
        if live.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    # The candidate sits next to the live file (same file system: the rename is atomic)
    # under a name Debian's conf.d/*.conf include does not pick up.
    candidate = live.with_name(f".{live.name}.candidate")
    candidate.write_text(text, encoding="utf-8")
    try:
        check_config(target.binary, candidate)
    except NginxConfigRefused:
        candidate.unlink(missing_ok=True)
        raise
    os.replace(candidate, live)
    if not reload_nginx(target.pid_file):
        # Written all the same: nginx reads it when it starts.
        log.warning(
            "nginx is not running: the routing config waits for its start",
            pid_file=str(target.pid_file),
        )
    return True


def reload_nginx(pid_file: Path) -> bool:
    """HUP nginx's master (its PID from ``pid_file``); False when it is not running."""
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True
