"""A throwaway OpenSSH server for tests, from the machine's /usr/sbin/sshd, on 127.0.0.1.

Its config, host key, pid file and authorized keys all live in the temp dir: nothing of the
machine's own sshd (its /etc/ssh, its host keys) is read or changed. Only public keys are
accepted, for one user (the one running the tests), from the temp ``authorized_keys``.
sshd refuses to start without its privilege-separation directory (/run/sshd, which
Debian's service unit creates at boot); it is created, empty and root-owned, when missing.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from pathlib import Path

from .local_server import (
    HOST,
    LocalServer,
    ServerUnavailable,
    port_is_open,
    spawn_until_ready,
    terminate_process,
)

START_TIMEOUT_S = 20.0
PRIVSEP_DIR = Path("/run/sshd")


class SshdUnavailable(ServerUnavailable):
    """No sshd or ssh-keygen binary."""


def _binary(name: str, where: str) -> Path:
    found = shutil.which(name) or (where if Path(where).exists() else None)
    if found is None:
        raise SshdUnavailable(f"{name} not found; install the Debian package 'openssh-server'")
    return Path(found)


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A new key pair without a passphrase at ``path`` (and ``path``.pub)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "gpuyard-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


class SshServer(LocalServer):
    """sshd in a temp dir. ``user`` logs in with any key passed to :meth:`authorize`;
    :meth:`change_host_key` restarts it on the same port with a new host key (what a
    reinstalled host, or a man in the middle, presents)."""

    kind = "sshd"

    def __init__(self) -> None:
        super().__init__()
        self._sshd: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.user = getpass.getuser()

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def host_public_key(self) -> str:
        """The host key's public half, as ``ssh-ed25519 AAAA... comment``."""
        return self.host_key.with_suffix(".pub").read_text().strip()

    @property
    def _config(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def _log(self) -> Path:
        return self.directory / "sshd.log"

    def check_available(self) -> None:
        self._sshd = _binary("sshd", "/usr/sbin/sshd")
        _binary("ssh-keygen", "/usr/bin/ssh-keygen")

    def _prepare(self, directory: Path) -> None:
        if not PRIVSEP_DIR.exists():
            PRIVSEP_DIR.mkdir(mode=0o755)
        keygen(self.host_key)
        (directory / "authorized_keys").touch(mode=0o600)

    def authorize(self, public_key: str) -> None:
        """Let ``user`` log in with this public key (one ``authorized_keys`` line)."""
        with (self.directory / "authorized_keys").open("a") as keys:
            keys.write(public_key.strip() + "\n")

    def change_host_key(self) -> str:
        """Restart with a new host key on the same port; returns its public half."""
        self._shutdown()
        keygen(self.host_key)
        self._launch(self.port)
        return self.host_public_key

    def _write_config(self, port: int) -> None:
        directory = self.directory
        self._config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    f"ListenAddress {HOST}",
                    f"HostKey {self.host_key}",
                    f"PidFile {directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    f"AllowUsers {self.user}",
                    "PrintMotd no",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )

    def _launch(self, port: int) -> None:
        assert self._sshd is not None
        self._write_config(port)
        self._process = spawn_until_ready(
            [str(self._sshd), "-D", "-e", "-f", str(self._config)],
            self._log,
            lambda: port_is_open(port),
            failure=f"sshd did not listen on {HOST}:{port}",
            watch_pid=self._watch_pid,
            timeout_s=START_TIMEOUT_S,
            poll_s=0.02,
            append_log=True,
        )

    def _shutdown(self) -> None:
        if self._process is not None:
            terminate_process(self._process)  # sshd then drops its sessions' children too
            self._process = None
