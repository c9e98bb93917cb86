"""`gpuyard server ...`: operations on one server (its host cleanup)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gpuyard.cli.api_client import ApiClient, ApiError

server_app = typer.Typer(help="Operations on one server.", no_args_is_help=True)
console = Console()
#: A cleanup sizes containers and walks files directories: it may take minutes.
CLEANUP_TIMEOUT_S = 600.0


def _server_id(client: ApiClient, ref: str) -> str:
    """A server by id, or by its (unique) name."""
    for server in client.get("/api/v1/servers", limit=1000)["data"]:
        if ref in (server["id"], server["name"]):
            return str(server["id"])
    raise ApiError(404, f"no server with id or name {ref!r}")


def human_bytes(size: int) -> str:
    """``size`` in the largest binary unit that keeps it at or above 1 (1.5 MiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@server_app.command("cleanup")
def cleanup(
    server: Annotated[str, typer.Argument(help="server id or name")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only list what would be removed")
    ] = False,
    retention_hours: Annotated[
        float | None,
        typer.Option(help="remove stopped containers and files unused this long (hours)"),
    ] = None,
) -> None:
    """Remove what gpuyard left on a server (--dry-run: only list it).

    Stopped gpuyard containers past the retention, dangling images and orphaned volumes
    gpuyard made, files directories of workloads that are gone."""
    client = ApiClient()
    body: dict[str, Any] = {"dry_run": dry_run}
    if retention_hours is not None:
        body["retention_hours"] = retention_hours
    report = client.request(
        "POST",
        f"/api/v1/servers/{_server_id(client, server)}/cleanup",
        json=body,
        timeout=CLEANUP_TIMEOUT_S,
    ).json()
    if report.get("note"):
        console.print(report["note"])
    if report["items"]:
        table = Table("KIND", "NAME", "SIZE", "OUTCOME", "ERROR")
        for item in report["items"]:
            table.add_row(
                item["kind"],
                item["name"],
                human_bytes(item["size_bytes"]),
                item["outcome"],
                item["error"] or "",
            )
        console.print(table)
    total = human_bytes(report["total_bytes"])
    if report["dry_run"]:
        console.print(f"dry run: {len(report['items'])} item(s), {total} would be freed")
        return
    console.print(
        f"removed {report['removed']} item(s), freed {total}; "
        f"{report['failed']} failed, {report['skipped']} skipped"
    )
    if report["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer, reports_errors: Callable[[Any], Any]) -> None:
    """Add the group, each command reporting API errors as the others do."""
    for command in server_app.registered_commands:
        command.callback = reports_errors(command.callback)
    app.add_typer(server_app, name="server")
