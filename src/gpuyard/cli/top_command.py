"""`gpuyard top`: the fleet at a glance, refreshed in place (servers, GPUs, queue)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.output import Column, number, table_lines

console = Console()
BAR_CELLS = 10


def _bar(used: float, total: float) -> str:
    """A ten-cell bar of used/total: '███████░░░'."""
    filled = round(BAR_CELLS * used / total) if total else 0
    return "█" * filled + "░" * (BAR_CELLS - filled)


def _utilisation(server: dict[str, Any]) -> str:
    readings = [g["utilization"] for g in server["gpus"] if g["utilization"] is not None]
    return f"{sum(readings) / len(readings):.0%}" if readings else "-"


TOP_COLUMNS = [
    Column("SERVER", lambda s: s["name"]),
    Column("STATUS", lambda s: s["status"]),
    Column(
        "GPU ALLOC",
        lambda s: (
            f"{_bar(s['allocated']['gpu'], s['capacity']['gpu'])} "
            f"{number(s['allocated']['gpu'])}/{number(s['capacity']['gpu'])}"
        ),
    ),
    Column("GPU UTIL", _utilisation),
    Column("CPU", lambda s: f"{number(s['allocated']['cpu'])}/{number(s['capacity']['cpu'])}"),
    Column(
        "RAM GB",
        lambda s: f"{number(s['allocated']['ram_gb'])}/{number(s['capacity']['ram_gb'])}",
        drop_rank=1,
    ),
    Column(
        "MODEL", lambda s: ", ".join(sorted({g["model"] for g in s["gpus"]})) or "-", shrinks=True
    ),
]


def fleet_view(client: ApiClient, width: int) -> str:
    """One screen: totals, the waiting queue's head, then every server."""
    servers = client.all_pages("/api/v1/servers")
    running = client.get("/api/v1/workloads", status=["running"], limit=1)["count"]
    queue = client.get("/api/v1/queue")["data"]
    total = sum(s["capacity"]["gpu"] for s in servers)
    used = sum(s["allocated"]["gpu"] for s in servers)
    online = sum(1 for s in servers if s["status"] == "online")
    lines = [
        f"servers {online}/{len(servers)} online   GPUs {number(used)}/{number(total)} allocated"
        f"   running {running}   waiting {len(queue)}",
    ]
    for entry in queue[:3]:
        lines.append(f"  next: {entry['workload']['name']}: {entry['reason']}"[:width])
    lines.append("")
    lines += table_lines(servers, TOP_COLUMNS, wide=False, width=width)
    return "\n".join(lines)


def top(
    interval: Annotated[
        float, typer.Option(min=0.5, max=3600, help="seconds between refreshes")
    ] = 2.0,
    once: Annotated[bool, typer.Option(help="print one view and exit (for scripts)")] = False,
) -> None:
    """The fleet at a glance, refreshed in place (Ctrl-C stops)."""
    client = ApiClient()
    if once:
        typer.echo(fleet_view(client, console.width))
        return
    try:
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while True:
                live.update(Text(fleet_view(client, console.width)), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        return
