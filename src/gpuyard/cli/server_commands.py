"""`gpuyard server cleanup`: what gpuyard left on a server's host, listed or removed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.output import Column, print_records

console = Console()
#: A cleanup sizes containers and walks files directories: it may take minutes.
CLEANUP_TIMEOUT_S = 600.0


def human_bytes(size: int) -> str:
    """``size`` in the largest binary unit that keeps it at or above 1 (1.5 MiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


CLEANUP_COLUMNS = [
    Column("KIND", lambda i: i["kind"]),
    Column("NAME", lambda i: i["name"], shrinks=True),
    Column("SIZE", lambda i: human_bytes(i["size_bytes"])),
    Column("OUTCOME", lambda i: i["outcome"]),
    Column("ERROR", lambda i: i["error"] or "", wide_only=True),
]


def cleanup(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
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
        f"/api/v1/servers/{client.resolve_server(server)['id']}/cleanup",
        json=body,
        timeout=CLEANUP_TIMEOUT_S,
    ).json()
    if report.get("note"):
        console.print(report["note"])
    if report["items"]:
        print_records(console, report["items"], CLEANUP_COLUMNS)
        for item in report["items"]:
            if item["error"]:
                console.print(f"{item['name']}: {item['error']}", markup=False, soft_wrap=True)
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
