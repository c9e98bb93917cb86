"""A throwaway container registry for tests, from Debian's docker-registry (distribution
2.x), on 127.0.0.1 with its storage in a temp dir and one htpasswd user.

dockerd treats registries on 127.0.0.0/8 as insecure (plain HTTP) by default, so the test
dockerd pushes to and pulls from it without any daemon option. The password is hashed with
bcrypt through the standard library's ``crypt`` (libxcrypt on Debian), the only hash the
registry's htpasswd accepts.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from .local_server import (
    HOST,
    LocalServer,
    ServerUnavailable,
    spawn_until_ready,
    terminate_process,
)

START_TIMEOUT_S = 20.0
USERNAME = "pusher"


class RegistryUnavailable(ServerUnavailable):
    """No docker-registry binary."""


def find_registry() -> Path:
    found = shutil.which("docker-registry") or shutil.which("registry")
    if found is None:
        raise RegistryUnavailable(
            "docker-registry not found; install the Debian package 'docker-registry'"
        )
    return Path(found)


def bcrypt_hash(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated in 3.11, still the one bcrypt without a new dependency

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def answers(port: int) -> bool:
    """Whether the registry answers its API root (401 without credentials)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v2/", timeout=1.0):
            return True
    except urllib.error.HTTPError as refused:
        return refused.code == 401
    except OSError:
        return False


class RegistryServer(LocalServer):
    """docker-registry in a temp dir; `address` is 127.0.0.1:PORT, with `username` and
    `password` the only account."""

    kind = "registry"

    def __init__(self) -> None:
        super().__init__()
        self._binary: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.username = USERNAME
        self.password = secrets.token_urlsafe(16)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def _log(self) -> Path:
        return self.directory / "registry.log"

    def check_available(self) -> None:
        self._binary = find_registry()

    def _prepare(self, directory: Path) -> None:
        (directory / "htpasswd").write_text(f"{self.username}:{bcrypt_hash(self.password)}\n")
        (directory / "storage").mkdir()

    def _launch(self, port: int) -> None:
        assert self._binary is not None
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.directory / 'storage'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {HOST}:{port}\n  secret: {secrets.token_hex(16)}\n"
            "auth:\n  htpasswd:\n    realm: gpuyard-test\n"
            f"    path: {self.directory / 'htpasswd'}\n"
        )
        self._process = spawn_until_ready(
            [str(self._binary), "serve", str(config)],
            self._log,
            lambda: answers(port),
            failure=f"docker-registry did not answer on {HOST}:{port}",
            watch_pid=self._watch_pid,
            timeout_s=START_TIMEOUT_S,
        )

    def _shutdown(self) -> None:
        if self._process is not None:
            terminate_process(self._process)
            self._process = None
