"""`gpuyard agent`: the per-host agent service (inventory, containers, logs, exec, files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from gpuyard import __version__

err = Console(stderr=True)


def agent(
    ctx: typer.Context,
    token: Annotated[
        str | None,
        typer.Option(
            help="bearer token the control plane must present (or GPUYARD_AGENT_TOKEN; "
            "prefer the variable: command lines are visible to every local user)",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8090)")] = None,
    name: Annotated[
        str | None, typer.Option(help="agent name, labels its containers (default: hostname)")
    ] = None,
    docker_host: Annotated[
        str | None, typer.Option(help="Docker API, e.g. unix:///var/run/docker.sock")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="where workspaces live (default ./gpuyard-agent-data)")
    ] = None,
    publish_address: Annotated[
        str | None, typer.Option(help="host address for published ports (default 127.0.0.1)")
    ] = None,
) -> None:
    """Run the gpuyard agent on this Docker host (see `agent install`).

    `gpuyard agent install --host H --ssh-key K` installs it on another host over SSH."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from gpuyard.agent.app import create_agent_app
    from gpuyard.agent.settings import AgentSettings
    from gpuyard.log import configure_logging

    overrides = {
        key: value
        for key, value in (
            ("token", token),
            ("host", host),
            ("port", port),
            ("name", name),
            ("docker_host", docker_host),
            ("data_dir", data_dir),
            ("publish_address", publish_address),
        )
        if value is not None
    }
    try:
        settings = AgentSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "settings"
            err.print(f"[red]error[/] {field}: {error['msg']}")
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    scheme = "https" if settings.tls_cert else "http"
    err.print(
        f"gpuyard agent {__version__} '{settings.name}' on {scheme}://{settings.host}:{settings.port}"
    )
    tls = (
        {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        if settings.tls_cert
        else {}
    )
    uvicorn.run(
        create_agent_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        **tls,  # type: ignore[arg-type]
    )


def register(app: typer.Typer) -> None:
    """Add the ``agent`` command (and ``agent install``) to the gpuyard CLI."""
    from gpuyard.cli.agent_install_command import install
    from gpuyard.cli.errors import reports_api_errors

    agent_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    agent_app.callback()(agent)
    agent_app.command("install")(reports_api_errors()(install))
    app.add_typer(agent_app, name="agent", rich_help_panel="Processes")
