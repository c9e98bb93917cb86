"""`gpuyard agent install`: put the agent on a fresh Debian/Ubuntu host over SSH, start
it, and register the host with gpuyard as a docker server (issue 19).

The host key is trusted on first use, as the control plane's host SSH does: it is pinned
in ``~/.config/gpuyard/known_hosts`` (``XDG_CONFIG_HOME``) at the first connection and a
host presenting another key later is refused before the key is used. The agent's token
is generated here, written on the host in a 0600 file, and sent to the control plane
only in the registration's body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import secrets
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from gpuyard import __version__
from gpuyard.cli.api_client import ApiClient, ApiError
from gpuyard.domain.errors import GpuyardError
from gpuyard.domain.host_ssh import SshCredentials, checked_endpoint, checked_host
from gpuyard.runtimes.agent_install import InstallOutcome, InstallPlan, install_agent
from gpuyard.runtimes.host_ssh import HostKeyChanged, connection, read_private_key, run_command

console = Console(stderr=True)
_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,62}$")


def known_hosts_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpuyard" / "known_hosts"


def _pinned(where: str) -> str | None:
    path = known_hosts_path()
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        name, _, key = line.partition(" ")
        if name == where and key:
            return key.strip()
    return None


def _pin_to_file(where: str) -> Any:
    async def pin(public_key: str, fingerprint: str) -> None:
        path = known_hosts_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as known:
            known.write(f"{where} {public_key}\n")
        path.chmod(0o600)
        _say("connect", f"pinned the host key {fingerprint} in {path}")

    return pin


def _say(step: str, message: str) -> None:
    console.print(f"[bold cyan]{step:>9}[/] {escape(message)}", highlight=False)


def install(
    host: Annotated[str, typer.Option(help="the host's name or address, as SSH reaches it")],
    ssh_key: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, readable=True, help="private key to log in with"),
    ],
    user: Annotated[
        str, typer.Option(help="SSH user (root for an install at /; any user with --prefix)")
    ] = "root",
    port: Annotated[int, typer.Option(min=1, max=65535, help="SSH port")] = 22,
    cluster: Annotated[
        str | None, typer.Option(help="register into this docker cluster (name or id)")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="server and agent name (default: the host's hostname)")
    ] = None,
    agent_port: Annotated[int, typer.Option(min=1, max=65535)] = 8090,
    agent_bind: Annotated[
        str | None,
        typer.Option(help="address the agent listens on (default: --host when it is an address)"),
    ] = None,
    agent_url: Annotated[
        str | None, typer.Option(help="how gpuyard reaches the agent (default http://HOST:PORT)")
    ] = None,
    python: Annotated[str, typer.Option(help="the host's Python (3.11+) for the venv")] = "python3",
    prefix: Annotated[
        str, typer.Option(help="install under this directory instead of / (no systemd then)")
    ] = "/",
    wheelhouse: Annotated[
        Path | None,
        typer.Option(
            exists=True, file_okay=False, help="install offline from these wheels (uploaded)"
        ),
    ] = None,
    docker_host: Annotated[
        str | None, typer.Option(help="the host's Docker API, if not the default socket")
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            help="serve the agent over HTTPS with a self-signed certificate made on the host, "
            "pinned by gpuyard at registration"
        ),
    ] = True,
    save_ssh: Annotated[
        bool,
        typer.Option(help="also store this SSH access as the server's (for `gpuyard server ssh`)"),
    ] = False,
) -> None:
    """Install the agent on a Debian/Ubuntu host over SSH and register it with gpuyard.

    Makes a virtualenv, installs gpuyard, writes the agent's token (0600) and its systemd
    unit, starts it and waits until it answers, then registers the server."""
    if cluster is None:
        raise typer.BadParameter("name the docker cluster to register into", param_hint="--cluster")
    if not re.fullmatch(r"/[A-Za-z0-9._/-]*", prefix) or ".." in PurePosixPath(prefix).parts:
        # It ends up in a systemd unit and an environment file as it is: plain paths only.
        raise typer.BadParameter(
            "an absolute path of letters, digits, '.', '_', '-' and '/'", param_hint="--prefix"
        )
    try:
        endpoint = checked_endpoint(host, port, user)
        private_key, _facts = read_private_key(ssh_key.read_text(errors="replace"))
    except GpuyardError as exc:
        field = exc.errors[0].field if exc.errors else "host"
        flag = {"private_key": "--ssh-key", "username": "--user"}.get(field, f"--{field}")
        raise typer.BadParameter(
            exc.errors[0].message if exc.errors else exc.detail, param_hint=flag
        ) from None
    try:
        bind = checked_host(agent_bind, "agent_bind") if agent_bind else None
    except GpuyardError as exc:
        raise typer.BadParameter(exc.errors[0].message, param_hint="--agent-bind") from None
    bind = bind or (endpoint.host if _is_address(endpoint.host) else "0.0.0.0")
    client = ApiClient()
    cluster_id = client.resolve_cluster(cluster)["id"]
    where = f"{endpoint.host}:{endpoint.port}"
    token = secrets.token_urlsafe(32)

    async def run() -> tuple[str, InstallOutcome]:
        _say("connect", f"{endpoint}")
        async with connection(
            endpoint, SshCredentials(private_key), _pinned(where), _pin_to_file(where)
        ) as conn:
            agent_name = name or (await run_command(conn, "hostname -s")).stdout.strip()
            if not _NAME.match(agent_name):
                raise typer.BadParameter(
                    f"{agent_name!r} cannot name an agent", param_hint="--name"
                )
            plan = InstallPlan(
                prefix=PurePosixPath(prefix),
                python=python,
                token=token,
                agent_name=agent_name,
                bind=bind,
                port=agent_port,
                version=None if wheelhouse else __version__,
                wheelhouse=wheelhouse,
                docker_host=docker_host,
                tls_names=tuple(dict.fromkeys([endpoint.host, "127.0.0.1", "localhost"]))
                if tls
                else (),
            )
            return agent_name, await install_agent(conn, plan, _say)

    try:
        agent_name, outcome = asyncio.run(run())
    except HostKeyChanged as exc:
        console.print(f"[red]error[/] {escape(exc.detail.split(' If the host')[0])}")
        console.print(
            f"If the host was reinstalled, remove the line for {where} from {known_hosts_path()}."
        )
        raise typer.Exit(1) from None
    except GpuyardError as exc:
        raise ApiError(exc.status, exc.detail) from None
    for warning in outcome.warnings:
        console.print(f"[yellow]warning[/] {escape(warning)}")
    started = (
        "with systemd" if outcome.started_with == "systemd"
        else f"in the background (pid {outcome.pid}; unit written to {outcome.unit_file})"
    )  # fmt: skip
    _say("start", f"the agent {agent_name} runs {started} on {outcome.os_name}")

    address = endpoint.host if ":" not in endpoint.host else f"[{endpoint.host}]"  # IPv6
    url = agent_url or f"{'https' if tls else 'http'}://{address}:{agent_port}"
    _say("register", f"{agent_name} at {url} in cluster {cluster}")
    body = {"name": agent_name, "cluster_id": cluster_id, "agent_url": url, "agent_token": token}
    if outcome.tls_cert:
        body["agent_tls_cert"] = outcome.tls_cert  # read over SSH: the one to trust
    server = client.post("/api/v1/servers", body)
    if save_ssh:
        client.request(
            "PUT",
            f"/api/v1/servers/{server['id']}/ssh",
            json={"host": endpoint.host, "port": endpoint.port, "username": endpoint.username,
                  "private_key": private_key},
        )  # fmt: skip
        _say("register", "SSH access stored for `gpuyard server ssh`")
    typer.echo(
        f"{server['name']} {server['status']}: {server['capacity']} ({len(server['gpus'])} GPUs)"
    )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
