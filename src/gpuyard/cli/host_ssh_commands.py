"""`gpuyard server ssh`: a terminal on a server's own host, through the control plane
(which holds the key and checks the pinned host key), and the commands that set, show,
un-pin and forget a server's SSH settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.exec_command import run_session
from gpuyard.cli.output import OutputFormat, OutputOption, human_age, print_record

console = Console()
#: Read instead of a prompt when set (scripts); the prompt hides what is typed.
PASSPHRASE_ENV = "GPUYARD_SSH_KEY_PASSPHRASE"  # noqa: S105 - a variable name
#: Error fields of PUT /servers/{id}/ssh and the flags that set them.
SSH_FLAGS = {
    "host": "--host",
    "port": "--port",
    "username": "--user",
    "private_key": "--key",
    "passphrase": "--passphrase",
    "cmd": "COMMAND",
}


def ssh(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
    command: Annotated[
        list[str] | None, typer.Argument(help="command and arguments (default: a login shell)")
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="send this terminal's stdin")
    ] = False,
    tty: Annotated[
        bool | None,
        typer.Option(
            "--tty/--no-tty", "-t/-T", help="a terminal (default: only for a login shell)"
        ),
    ] = None,
) -> None:
    """Open a shell (or run a command) on the server's host over SSH.

    The server keeps the key and pins the host key at first use; a changed host key is
    refused until an admin un-pins it (`gpuyard server ssh-unpin`)."""
    wants_tty = (not command) if tty is None else tty
    if wants_tty and not sys.stdin.isatty():
        raise typer.BadParameter("stdin is not a terminal: give a COMMAND or -T", param_hint="-t")
    client = ApiClient()
    server_id = client.resolve_server(server)["id"]
    path = f"/api/v1/servers/{server_id}/terminal"
    interactive = interactive or wants_tty
    raise typer.Exit(run_session(client, path, command or [], interactive, wants_tty))


def _lines(settings: dict[str, Any], name: str) -> list[str]:
    pin = settings.get("host_key")
    pinned = (
        f"{pin['fingerprint']} (pinned {human_age(pin['pinned_at'])})"
        if pin
        else "not pinned yet (pinned at the first connection)"
    )
    return [
        f"server:    {name}",
        f"ssh:       {settings['username']}@{settings['host']}:{settings['port']}",
        f"key:       {settings['key_type']} {settings['key_fingerprint']}",
        f"host key:  {pinned}",
    ]


def ssh_set(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
    key: Annotated[
        Path,
        typer.Option("--key", exists=True, dir_okay=False, readable=True, help="private key file"),
    ],
    user: Annotated[str, typer.Option("--user", help="user to log in as")],
    host: Annotated[
        str | None, typer.Option(help="host name or address (default: the agent URL's host)")
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 22,
    ask_passphrase: Annotated[
        bool,
        typer.Option("--passphrase", help=f"prompt for the key's passphrase (or {PASSPHRASE_ENV})"),
    ] = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Set how gpuyard reaches a server's host over SSH (the key is stored encrypted)."""
    client = ApiClient()
    found = client.resolve_server(server)
    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if ask_passphrase and passphrase is None:
        passphrase = typer.prompt("passphrase", hide_input=True)
    body: dict[str, Any] = {
        "port": port,
        "username": user,
        "private_key": key.read_text(errors="replace"),
    }
    if host is not None:
        body["host"] = host
    if passphrase is not None:
        body["passphrase"] = passphrase
    settings = client.request("PUT", f"/api/v1/servers/{found['id']}/ssh", json=body).json()
    print_record(console, settings, output, _lines(settings, found["name"]))


def ssh_show(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show a server's SSH settings and its pinned host key (never the private key)."""
    client = ApiClient()
    found = client.resolve_server(server)
    settings = client.get(f"/api/v1/servers/{found['id']}/ssh")
    print_record(console, settings, output, _lines(settings, found["name"]))


def ssh_unpin(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
) -> None:
    """Forget a server's pinned host key (after a reinstall or a key rotation): the next
    connection pins what the host presents then."""
    client = ApiClient()
    found = client.resolve_server(server)
    client.request("DELETE", f"/api/v1/servers/{found['id']}/ssh/host-key")
    console.print(f"host key of {found['name']} un-pinned", markup=False, highlight=False)


def ssh_forget(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
) -> None:
    """Remove a server's SSH settings, its stored key and its pinned host key."""
    client = ApiClient()
    found = client.resolve_server(server)
    client.delete(f"/api/v1/servers/{found['id']}/ssh")
    console.print(f"SSH settings of {found['name']} removed", markup=False, highlight=False)
