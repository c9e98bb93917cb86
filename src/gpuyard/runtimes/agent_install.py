"""Installing the gpuyard agent on a Debian or Ubuntu host over SSH (issue 19,
``gpuyard agent install``), step by step on a connection from ``runtimes/host_ssh.py``.

The steps: check the host (Debian/Ubuntu, Python >= 3.11 with venv, Docker), upload the
wheels when installing offline, make a virtualenv and install gpuyard into it, write the
agent's environment file (its token, mode 0600, written over SFTP: never on a command
line) and its systemd unit, then start it: with systemd when the host runs it and the
install is at ``/``; otherwise (a container, a sandbox, a prefix) in the background with a
pid file, saying so. Finally wait until the agent answers ``/healthz``. Every path lives
under ``prefix`` (``/`` on a real host), so a test installs into a temp dir.

Every remote command is built here from quoted parts (``shlex.quote``); nothing a caller
types reaches a shell unquoted.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import asyncssh

from gpuyard.domain.errors import UpstreamProblem
from gpuyard.runtimes.host_ssh import CommandResult, run_command

#: Seconds to wait for the started agent to answer ``/healthz``.
HEALTH_TIMEOUT_S = 60.0
SERVICE = "gpuyard-agent"
#: Distributions the installer knows (by /etc/os-release ID or ID_LIKE).
SUPPORTED_OS = ("debian", "ubuntu")

#: The system account the agent runs as under systemd (the unit's ``User=``), in the
#: docker group where the host has one, as the Ansible role makes it.
SERVICE_USER = "gpuyard"
#: The agent's unit, the same file the Ansible role renders and deploy/systemd links to;
#: its paths are the ones a plan at ``/`` uses, replaced by the plan's under a prefix.
_UNIT_RESOURCE = "units/gpuyard-agent.service"
_UNIT_VENV = "/opt/gpuyard/venv"
_UNIT_ENV_FILE = "/etc/gpuyard/agent.env"
_UNIT_DATA_DIR = "/var/lib/gpuyard-agent"


@dataclass(frozen=True)
class InstallPlan:
    """Where everything goes on the host, and how the agent is set up."""

    prefix: PurePosixPath
    #: The interpreter the virtualenv is made from.
    python: str
    token: str
    agent_name: str
    bind: str
    port: int
    #: gpuyard's version to install from the host's package index, or None with wheels.
    version: str | None
    #: Local directory of wheels to upload and install offline (``--no-index``).
    wheelhouse: Path | None
    docker_host: str | None = None
    #: Names the agent's self-signed certificate carries (empty: plain HTTP, no TLS).
    tls_names: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"InstallPlan(prefix={str(self.prefix)!r}, name={self.agent_name!r})"

    def _under(self, path: str) -> PurePosixPath:
        return self.prefix / path.lstrip("/")

    @property
    def home(self) -> PurePosixPath:
        return self._under("/opt/gpuyard")

    @property
    def venv(self) -> PurePosixPath:
        return self.home / "venv"

    @property
    def wheels(self) -> PurePosixPath:
        return self.home / "wheels"

    @property
    def env_file(self) -> PurePosixPath:
        return self._under("/etc/gpuyard/agent.env")

    @property
    def unit_file(self) -> PurePosixPath:
        return self._under(f"/etc/systemd/system/{SERVICE}.service")

    @property
    def data_dir(self) -> PurePosixPath:
        return self._under("/var/lib/gpuyard-agent")

    @property
    def log_file(self) -> PurePosixPath:
        return self._under("/var/log/gpuyard-agent.log")

    @property
    def pid_file(self) -> PurePosixPath:
        return self._under("/run/gpuyard-agent.pid")

    @property
    def tls_dir(self) -> PurePosixPath:
        return self._under("/etc/gpuyard/agent-tls")

    @property
    def tls(self) -> bool:
        return bool(self.tls_names)

    @property
    def health_url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host if ':' not in host else f'[{host}]'}:{self.port}/healthz"


def unit_text(plan: InstallPlan) -> str:
    """The systemd unit for this install: the shipped unit, with the plan's paths."""
    text = resources.files("gpuyard.runtimes").joinpath(_UNIT_RESOURCE).read_text("utf-8")
    for shipped, planned in (
        (_UNIT_VENV, plan.venv),
        (_UNIT_ENV_FILE, plan.env_file),
        (_UNIT_DATA_DIR, plan.data_dir),
    ):
        if shipped not in text:  # the unit and this code must move together
            raise RuntimeError(f"the shipped agent unit no longer names {shipped}")
        text = text.replace(shipped, str(planned))
    return text


def env_text(plan: InstallPlan) -> str:
    """The agent's environment file (its token included: written with mode 0600)."""
    values = {
        "GPUYARD_AGENT_TOKEN": plan.token,
        "GPUYARD_AGENT_HOST": plan.bind,
        "GPUYARD_AGENT_PORT": str(plan.port),
        "GPUYARD_AGENT_NAME": plan.agent_name,
        "GPUYARD_AGENT_DATA_DIR": str(plan.data_dir),
    }
    if plan.docker_host:
        values["GPUYARD_AGENT_DOCKER_HOST"] = plan.docker_host
    if plan.tls:
        values["GPUYARD_AGENT_TLS_CERT"] = str(plan.tls_dir / "cert.pem")
        values["GPUYARD_AGENT_TLS_KEY"] = str(plan.tls_dir / "key.pem")
    lines = ["# gpuyard agent settings, written by `gpuyard agent install` (keep it 0600)"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class InstallOutcome:
    os_name: str
    #: "systemd" or "background" (no systemd here, or a prefix install).
    started_with: str
    unit_file: str
    #: The agent's process id when started in the background.
    pid: int | None
    warnings: tuple[str, ...]
    #: The agent's self-signed certificate (PEM), read back over SSH: the control plane
    #: pins it at registration. None without TLS.
    tls_cert: str | None = None


class InstallFailed(UpstreamProblem):
    """A step failed on the host (502), with the command's own output."""

    def __init__(self, step: str, result: CommandResult | None, detail: str) -> None:
        said = ""
        if result is not None:
            said = (result.stderr.strip() or result.stdout.strip())[-800:]
        super().__init__(502, f"{step}: {detail}" + (f"\n{said}" if said else ""))
        self.step = step


Progress = Callable[[str, str], None]


async def _run(
    conn: asyncssh.SSHClientConnection, step: str, command: str, failure: str
) -> CommandResult:
    result = await run_command(conn, command)
    if result.exit_code != 0:
        raise InstallFailed(step, result, failure)
    return result


async def install_agent(
    conn: asyncssh.SSHClientConnection, plan: InstallPlan, progress: Progress
) -> InstallOutcome:
    """Run every step on the host; ``progress(step, message)`` hears each one. Raises
    InstallFailed naming the step that failed, with the host's own words."""
    q = shlex.quote
    warnings: list[str] = []

    progress("check", "reading /etc/os-release, Python and Docker")
    os_info = await _run(
        conn,
        "check",
        '. /etc/os-release && printf "%s\\n%s\\n%s\\n" "$ID" "${ID_LIKE:-}" "${PRETTY_NAME:-$ID}"',
        "cannot read /etc/os-release",
    )
    os_id, os_like, os_name = ([*os_info.stdout.splitlines(), "", "", ""])[:3]
    if not {os_id, *os_like.split()} & set(SUPPORTED_OS):
        raise InstallFailed("check", None, f"{os_name or os_id!r} is not Debian or Ubuntu")
    python = q(plan.python)
    version_ok = await run_command(
        conn, f"{python} -c 'import sys; sys.exit(sys.version_info < (3, 11))'"
    )
    if version_ok.exit_code != 0:
        raise InstallFailed("check", version_ok, f"{plan.python} is missing or older than 3.11")
    if (await run_command(conn, f"{python} -m ensurepip --version")).exit_code != 0:
        root = (await run_command(conn, "id -u")).stdout.strip() == "0"
        if not root:
            raise InstallFailed(
                "check", None, "python3-venv is missing; install it (apt-get install python3-venv)"
            )
        progress("check", "installing python3-venv with apt-get")
        await _run(
            conn,
            "check",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv",
            "apt-get could not install python3-venv",
        )
    if (
        await run_command(conn, "command -v docker >/dev/null || test -S /var/run/docker.sock")
    ).exit_code:
        warnings.append("Docker was not found on the host: the agent reports it unavailable")

    progress("venv", f"making {plan.venv}")
    await _run(
        conn,
        "venv",
        f"mkdir -p {q(str(plan.home))} && {python} -m venv {q(str(plan.venv))}",
        "cannot make the virtualenv",
    )
    pip = f"{q(str(plan.venv / 'bin' / 'pip'))} install -q --disable-pip-version-check"
    if plan.wheelhouse is not None:
        wheels = sorted(plan.wheelhouse.glob("*.whl"))
        progress("upload", f"{len(wheels)} wheels to {plan.wheels}")
        await _run(conn, "upload", f"mkdir -p {q(str(plan.wheels))}", "cannot make the wheels dir")
        async with conn.start_sftp_client() as sftp:
            await sftp.put([str(w) for w in wheels], str(plan.wheels))
        install = f"{pip} --no-index --find-links {q(str(plan.wheels))} gpuyard"
    else:
        install = f"{pip} {q(f'gpuyard=={plan.version}' if plan.version else 'gpuyard')}"
    progress("install", "installing gpuyard into the virtualenv")
    await _run(conn, "install", install, "pip could not install gpuyard")

    tls_cert = await _make_certificate(conn, plan, progress) if plan.tls else None
    progress("configure", f"{plan.env_file} (0600) and {plan.unit_file}")
    for directory in (plan.env_file.parent, plan.unit_file.parent, plan.data_dir):
        await _run(conn, "configure", f"mkdir -p {q(str(directory))}", f"cannot make {directory}")
    await _run(conn, "configure", f"chmod 0700 {q(str(plan.data_dir))}", "cannot chmod")
    async with conn.start_sftp_client() as sftp:
        async with sftp.open(str(plan.env_file), "w", asyncssh.SFTPAttrs(permissions=0o600)) as f:
            await f.write(env_text(plan))
        await sftp.chmod(str(plan.env_file), 0o600)
        async with sftp.open(str(plan.unit_file), "w") as f:
            await f.write(unit_text(plan))

    systemd = (
        await run_command(conn, "test -d /run/systemd/system && command -v systemctl >/dev/null")
    ).exit_code == 0
    pid: int | None = None
    if systemd and str(plan.prefix) == "/":
        await _ensure_service_account(conn, plan, progress, warnings)
        progress("start", f"systemctl enable {SERVICE} and (re)start it")
        # restart, not start: an agent already running from an earlier install must take
        # the new token and certificate.
        await _run(
            conn,
            "start",
            f"systemctl daemon-reload && systemctl enable {SERVICE} && systemctl restart {SERVICE}",
            "systemd could not start the agent",
        )
        started_with = "systemd"
    else:
        why = "no systemd on this host" if not systemd else "installed under a prefix"
        progress("start", f"{why}: the unit is written; starting the agent in the background")
        for directory in (plan.log_file.parent, plan.pid_file.parent):
            await _run(conn, "start", f"mkdir -p {q(str(directory))}", f"cannot make {directory}")
        # An agent an earlier install started here goes first (it holds the port and the
        # old token); only the pid this installer recorded is signalled.
        pid_file = q(str(plan.pid_file))
        await run_command(
            conn,
            f'if [ -f {pid_file} ]; then kill "$(cat {pid_file})" 2>/dev/null; '
            f'for i in $(seq 50); do kill -0 "$(cat {pid_file})" 2>/dev/null || break; '
            "sleep 0.1; done; fi",
        )
        started = await _run(
            conn,
            "start",
            f"cd {q(str(plan.data_dir))} && set -a && . {q(str(plan.env_file))} && set +a && "
            f"(setsid {q(str(plan.venv / 'bin' / 'gpuyard'))} agent "
            f">> {q(str(plan.log_file))} 2>&1 < /dev/null & echo $! > {q(str(plan.pid_file))}) && "
            f"cat {q(str(plan.pid_file))}",
            "cannot start the agent",
        )
        pid = int(started.stdout.strip().splitlines()[-1])
        started_with = "background"

    progress("wait", f"waiting for {plan.health_url}")
    await _wait_healthy(conn, plan)
    return InstallOutcome(
        os_name, started_with, str(plan.unit_file), pid, tuple(warnings), tls_cert
    )


async def _ensure_service_account(
    conn: asyncssh.SSHClientConnection,
    plan: InstallPlan,
    progress: Progress,
    warnings: list[str],
) -> None:
    """The unit runs the agent as ``SERVICE_USER``: make that system account (no login, no
    home of its own), put it in the docker group (how it reaches dockerd), and let it read
    the TLS key (group-readable by it only). The environment file stays root's: systemd
    reads it before dropping privileges."""
    q = shlex.quote
    user = q(SERVICE_USER)
    progress("account", f"system user {SERVICE_USER} (docker group) runs the agent")
    await _run(
        conn,
        "account",
        f"id -u {user} >/dev/null 2>&1 || useradd --system --user-group --no-create-home "
        f"--home-dir {q(str(plan.data_dir))} --shell /usr/sbin/nologin {user}",
        f"cannot create the {SERVICE_USER} account",
    )
    if (await run_command(conn, "getent group docker >/dev/null")).exit_code == 0:
        await _run(conn, "account", f"usermod -aG docker {user}", "cannot join the docker group")
    else:
        warnings.append(
            "the host has no docker group: the agent, running as "
            f"{SERVICE_USER}, cannot reach dockerd until it may"
        )
    if plan.tls:
        tls = q(str(plan.tls_dir))
        await _run(
            conn,
            "account",
            f"chgrp -R {user} {tls} && chmod 0750 {tls} && chmod 0640 {tls}/*",
            f"cannot let {SERVICE_USER} read the agent's TLS key",
        )


#: Run by the virtualenv's Python on the host (cryptography comes with gpuyard): a P-256
#: key (0600) and a self-signed certificate for the given names, valid ten years; prints
#: the certificate.
_CERTIFICATE_SCRIPT = """
import datetime, ipaddress, json, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

args = json.loads(sys.argv[1])
key = ec.generate_private_key(ec.SECP256R1())
names = []
for name in args["names"]:
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(name)))
    except ValueError:
        names.append(x509.DNSName(name))
subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args["cn"])])
now = datetime.datetime.now(datetime.timezone.utc)
certificate = (
    x509.CertificateBuilder()
    .subject_name(subject)
    .issuer_name(subject)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=5))
    .not_valid_after(now + datetime.timedelta(days=3650))
    .add_extension(x509.SubjectAlternativeName(names), critical=False)
    .sign(key, hashes.SHA256())
)
os.umask(0o077)
with open(args["key"], "wb") as out:
    out.write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
pem = certificate.public_bytes(serialization.Encoding.PEM)
with open(args["cert"], "wb") as out:
    out.write(pem)
sys.stdout.write(pem.decode())
"""


async def _make_certificate(
    conn: asyncssh.SSHClientConnection, plan: InstallPlan, progress: Progress
) -> str:
    """A new self-signed certificate for the agent, made on the host (its key never
    leaves it); the certificate as PEM, read back over the authenticated SSH channel."""
    progress("tls", f"a self-signed certificate for {', '.join(plan.tls_names)}")
    directory = shlex.quote(str(plan.tls_dir))
    await _run(
        conn, "tls", f"mkdir -p {directory} && chmod 0700 {directory}", "cannot make its dir"
    )
    args = {
        "names": list(plan.tls_names),
        "cn": plan.agent_name,
        "key": str(plan.tls_dir / "key.pem"),
        "cert": str(plan.tls_dir / "cert.pem"),
    }
    python = shlex.quote(str(plan.venv / "bin" / "python"))
    made = await run_command(
        conn, f"{python} - {shlex.quote(json.dumps(args))}", stdin=_CERTIFICATE_SCRIPT
    )
    if made.exit_code != 0 or "BEGIN CERTIFICATE" not in made.stdout:
        raise InstallFailed("tls", made, "cannot make the agent's certificate")
    return made.stdout.strip() + "\n"


async def _wait_healthy(conn: asyncssh.SSHClientConnection, plan: InstallPlan) -> None:
    """Poll the agent's /healthz from the host itself until it answers."""
    # Over TLS the probe trusts the agent's own certificate, as the control plane will.
    context = (
        f"ssl.create_default_context(cafile={str(plan.tls_dir / 'cert.pem')!r})"
        if plan.tls
        else "None"
    )
    script = (
        "import ssl, urllib.request\n"
        f"context = {context}\n"
        "if context is not None:\n"
        "    context.check_hostname = False\n"
        f"urllib.request.urlopen({plan.health_url!r}, timeout=2, context=context)\n"
    )
    probe = f"{shlex.quote(str(plan.venv / 'bin' / 'python'))} -c {shlex.quote(script)}"
    deadline = asyncio.get_running_loop().time() + HEALTH_TIMEOUT_S
    last: CommandResult | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await run_command(conn, probe)
        if last.exit_code == 0:
            return
        await asyncio.sleep(0.5)
    tail = await run_command(conn, f"tail -n 20 {shlex.quote(str(plan.log_file))}")
    raise InstallFailed(
        "wait", tail if tail.exit_code == 0 else last, f"the agent did not answer {plan.health_url}"
    )
