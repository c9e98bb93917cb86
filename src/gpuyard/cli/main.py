"""`gpuyard` command: serve, version, and the client commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

from gpuyard import __version__
from gpuyard.cli import admin_commands, agent_command, apply_commands, client_commands
from gpuyard.cli.audit_commands import audit_app
from gpuyard.cli.cluster_commands import clusters_app
from gpuyard.cli.context_commands import context_app
from gpuyard.cli.errors import _reports_api_errors
from gpuyard.cli.help_format import use_conventional_help
from gpuyard.cli.pool_commands import pools_app

if TYPE_CHECKING:
    import uvicorn

    from gpuyard.services.context import ServiceContext

# Completion is the `completion` command below, not Typer's two options: they took a
# sixth of the help screen.
app = typer.Typer(
    help="gpuyard: GPU and container resource manager.",
    no_args_is_help=True,
    add_completion=False,
)
completion_init()  # what add_completion would do: the shells' completers, registered
use_conventional_help()
console = Console()
client_commands.register(app)
for declarative in (apply_commands.apply, apply_commands.delete):
    app.command(rich_help_panel="Workloads")(_reports_api_errors(declarative))
app.add_typer(clusters_app, name="clusters", rich_help_panel="Fleet")
app.add_typer(pools_app, name="pools", rich_help_panel="Fleet")
app.add_typer(audit_app, name="audit", rich_help_panel="Account")
app.add_typer(context_app, name="context", rich_help_panel="Account")
admin_commands.register(app, audit_app)
agent_command.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gpuyard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="print the version and exit",
        ),
    ] = False,
) -> None:
    """gpuyard: GPU and container resource manager.

    Log in once (`gpuyard login EMAIL`), then launch with `gpuyard run`, watch with
    `gpuyard ps`. GPUYARD_URL and GPUYARD_TOKEN override the saved login.
    """


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


@app.command(rich_help_panel="Processes")
def completion(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish")]) -> None:
    """Print shell completion (`gpuyard completion bash >> ~/.bashrc`)."""
    script = get_completion_script(
        prog_name="gpuyard", complete_var="_GPUYARD_COMPLETE", shell=shell.value
    )
    typer.echo(script)


@app.command(hidden=True)  # `gpuyard --version` is listed; this stays for scripts
def version() -> None:
    """Print the gpuyard version."""
    console.print(f"gpuyard {__version__}")


@app.command(rich_help_panel="Processes")
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8080)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where SQLite and keys live")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL instead of the embedded SQLite")
    ] = None,
    demo: Annotated[bool, typer.Option(help="add a simulated demo cluster of GPU servers")] = False,
    no_loops: Annotated[bool, typer.Option(help="serve the API without background loops")] = False,
    local_docker: Annotated[
        str | None,
        typer.Option(help="offer this machine's Docker as the `local` server: auto, on, off"),
    ] = None,
) -> None:
    """Run the server: API, scheduler and background loops."""
    import uvicorn

    from gpuyard.api.app import create_app
    from gpuyard.log import configure_logging
    from gpuyard.services.bootstrap import build_context, ensure_demo_cluster, ensure_first_admin
    from gpuyard.services.fleet.local_docker import (
        ensure_local_server,
        local_docker_enabled,
        start_local_agent,
    )
    from gpuyard.settings import Settings

    overrides: dict[str, object] = {}
    for key, value in (
        ("host", host),
        ("port", port),
        ("data_dir", data_dir),
        ("database_url", database_url),
        ("local_docker", local_docker),
    ):
        if value is not None:
            overrides[key] = value
    if demo:
        overrides["demo"] = True
    if no_loops:
        overrides["run_loops"] = False
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_json)
    ctx = build_context(settings)
    generated = ensure_first_admin(ctx)
    if generated:
        console.print(
            f"[bold]First admin created[/]: {settings.admin_email} / password [bold]{generated}[/]"
            "\n(shown once; set GPUYARD_ADMIN_PASSWORD to choose it)"
        )
    if settings.demo and ensure_demo_cluster(ctx):
        console.print("Demo cluster created: 4 simulated servers x 8 GPUs (H100, A100)")
    if local_docker_enabled(settings):
        agent = start_local_agent(settings)
        ensure_local_server(ctx, agent)
        console.print(f"Local Docker offered as server `local` (agent on {agent.url})")
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"gpuyard {__version__} on {base}  (API docs: {base}/api/docs)")
    console.print(f"[bold]Open the dashboard: {base}/[/]" + _dashboard_note())
    # The app finds the client address itself (api/client_address.py, trusting only
    # GPUYARD_TRUSTED_PROXIES); uvicorn's own X-Forwarded-For handling stays off.
    uvicorn.run(
        create_app(ctx),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        proxy_headers=False,
    )


def _dashboard_note() -> str:
    from gpuyard.api.static_files import DEFAULT_DIST

    if (DEFAULT_DIST / "index.html").is_file():
        return ""
    return "  (not built here: `make web` builds it)"


@app.command(hidden=True)  # a development tool (`make web-client`)
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="write the document here instead of to stdout")
    ] = None,
) -> None:
    """Print this version's OpenAPI document.

    The dashboard's typed client is generated from it (`make web-client`)."""
    import json
    import tempfile

    from gpuyard.api.app import create_app
    from gpuyard.services.bootstrap import build_context
    from gpuyard.settings import Settings

    with tempfile.TemporaryDirectory(prefix="gpuyard-openapi-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=None, run_loops=False)
        ctx = build_context(settings)
        try:
            document = create_app(ctx).openapi()
        finally:
            ctx.db.dispose()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command(rich_help_panel="Processes")
def worker(
    data_dir: Annotated[Path | None, typer.Option(help="where SQLite and keys live")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL instead of the embedded SQLite")
    ] = None,
) -> None:
    """Run the background loops without the API.

    The scheduler, lifecycle, starter, health, reconcile and cleanup loops, beside
    `gpuyard serve --no-loops` processes."""
    import signal
    import threading

    from gpuyard.log import configure_logging
    from gpuyard.services.background import start_loops, stop_loops
    from gpuyard.services.bootstrap import build_context
    from gpuyard.settings import Settings

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_json)
    ctx = build_context(settings)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    ctx.bus.start()
    runner = start_loops(ctx)
    metrics_server = _serve_worker_metrics(ctx) if settings.worker_metrics_port else None
    # The instance id is the holder named in the leases table: which worker ticks which loop.
    console.print(
        f"gpuyard {__version__} worker {ctx.instance_id}: loops running (Ctrl-C to stop)",
        soft_wrap=True,
    )
    stopping.wait()
    if metrics_server is not None:
        metrics_server.should_exit = True
    stop_loops(ctx, runner)
    ctx.bus.stop()
    ctx.db.dispose()


def _serve_worker_metrics(ctx: ServiceContext) -> uvicorn.Server:
    """GET /metrics of this worker on GPUYARD_WORKER_METRICS_PORT, in a thread."""
    import threading

    import uvicorn

    from gpuyard.api.app import create_metrics_app

    settings = ctx.settings
    config = uvicorn.Config(
        create_metrics_app(ctx),
        host=settings.host,
        port=settings.worker_metrics_port or 0,
        log_level="warning",
        proxy_headers=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)  # in a thread, so it leaves the signals to the worker
    threading.Thread(target=server.run, name="worker-metrics", daemon=True).start()
    console.print(
        f"worker metrics on http://{settings.host}:{settings.worker_metrics_port}/metrics"
    )
    return server


if __name__ == "__main__":
    app()
