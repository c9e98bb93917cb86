"""`gpuyard pools ...`: warm pools over the REST API (admins and operators)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.errors import _reports_api_errors
from gpuyard.cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    QuietOption,
    print_record,
    print_records,
)

pools_app = typer.Typer(help="Warm pools of pre-started containers.", no_args_is_help=True)
console = Console()


@pools_app.callback()
def pools() -> None:
    """Warm pools of pre-started containers."""


def _resolve(client: ApiClient, ref: str) -> dict[str, Any]:
    """A pool by name, id or unique id prefix."""
    return client.resolve_listed("/api/v1/pools", ref, "pool")


def _summary(pool: dict[str, Any]) -> str:
    return (
        f"{pool['name']}: {pool['available']} available, {pool['warming']} warming, "
        f"{pool['assigned']} assigned (target {pool['target_size']})"
    )


POOL_COLUMNS = [
    Column("NAME", lambda p: p["name"]),
    Column("TYPE", lambda p: p["image_type"]),
    Column("IMAGE", lambda p: p["image"], shrinks=True),
    Column(
        "WHERE",
        lambda p: (
            f"server {p['server_id'][:8]}" if p["server_id"] else f"cluster {p['cluster_id'][:8]}"
        ),
        drop_rank=1,
    ),
    Column("TARGET", lambda p: str(p["target_size"])),
    Column("AVAIL", lambda p: str(p["available"])),
    Column("WARMING", lambda p: str(p["warming"])),
    Column("ASSIGNED", lambda p: str(p["assigned"])),
    Column("ID", lambda p: p["id"], is_id=True),
]
MEMBER_COLUMNS = [
    Column("INDEX", lambda m: str(m["pool_index"])),
    Column("STATE", lambda m: m["state"]),
    Column("STATUS", lambda m: m["status"]),
    Column("OWNER", lambda m: m["owner_id"] or "-", is_id=True),
    Column("HOST PORT", lambda m: str(m["host_port"] or "-")),
    Column("CONTAINER", lambda m: m["container_name"], shrinks=True),
    Column("WORKLOAD", lambda m: m["workload_id"] or "-", is_id=True),
]


@pools_app.command("ls")
@_reports_api_errors
def list_pools(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Every pool with its counts."""
    print_records(console, ApiClient().all_pages("/api/v1/pools"), POOL_COLUMNS, output, quiet)


@pools_app.command("status")
@_reports_api_errors
def status(
    pool: Annotated[str, typer.Argument(help="pool id or name")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """A pool's warm containers: index, state, status, owner, port, container name."""
    found = _resolve(ApiClient(), pool)
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        print_record(console, found, output, [])
        return
    console.print(_summary(found))
    if found.get("failures"):
        failing = (
            f"since {found['failing_since']}: {found['failures']} warm container(s) failed "
            f"in a row, the latest: {found['last_failure']}; refilling waits until "
            f"{found['refill_after']}"
        )
        console.print("[yellow]failing[/] " + escape(failing), highlight=False)
    print_records(console, found["members"], MEMBER_COLUMNS, output)


@pools_app.command("create")
@_reports_api_errors
def create(
    name: Annotated[str, typer.Argument()],
    image_type: Annotated[str, typer.Option("--type", help="image type (nginx, python...)")],
    image: Annotated[str, typer.Option(help="image reference")],
    ports: Annotated[str, typer.Option(help="host port range, e.g. 31000-31099")],
    server: Annotated[str | None, typer.Option(help="server id")] = None,
    cluster: Annotated[str | None, typer.Option(help="cluster id")] = None,
    size: Annotated[int, typer.Option(help="warm containers to keep")] = 2,
    container_port: Annotated[int | None, typer.Option(help="port each one publishes")] = None,
    cpu: Annotated[float, typer.Option()] = 0.5,
    ram_gb: Annotated[float, typer.Option()] = 0.5,
    files_path: Annotated[
        str | None, typer.Option(help="where each one's files are mounted (default /workspace)")
    ] = None,
) -> None:
    """Define a pool; its warm containers start in the background."""
    low, _, high = ports.partition("-")
    try:
        port_min, port_max = int(low), int(high or low)
    except ValueError:
        console.print("[red]error[/] --ports: give FIRST-LAST, e.g. 31000-31099")
        raise typer.Exit(1) from None
    body: dict[str, Any] = {
        "name": name,
        "image_type": image_type,
        "image": image,
        "server_id": server,
        "cluster_id": cluster,
        "target_size": size,
        "port_min": port_min,
        "port_max": port_max,
        "container_port": container_port,
        "cpu": cpu,
        "ram_gb": ram_gb,
    }
    if files_path is not None:
        body["files_path"] = files_path
    created = ApiClient().post("/api/v1/pools", body)
    console.print(f"created pool {created['name']} ({created['id']})")


@pools_app.command("resize")
@_reports_api_errors
def resize(
    pool: Annotated[str, typer.Argument(help="pool id or name")],
    size: Annotated[int, typer.Argument(help="new target size")],
) -> None:
    """Change how many warm containers the pool keeps."""
    client = ApiClient()
    found = _resolve(client, pool)
    response = client.request("PATCH", f"/api/v1/pools/{found['id']}", json={"target_size": size})
    console.print(_summary(response.json()))


@pools_app.command("reinit")
@_reports_api_errors
def reinitialise(pool: Annotated[str, typer.Argument(help="pool id or name")]) -> None:
    """Replace every available warm container with a fresh one."""
    client = ApiClient()
    found = _resolve(client, pool)
    console.print(_summary(client.post(f"/api/v1/pools/{found['id']}/reinitialise")))


@pools_app.command("release")
@_reports_api_errors
def release(
    pool: Annotated[str, typer.Argument(help="pool id or name")],
    workload: Annotated[str, typer.Argument(help="the assigned container's workload id")],
) -> None:
    """Take an assigned container back: its user's workload stops, a fresh one refills."""
    client = ApiClient()
    found = _resolve(client, pool)
    path = f"/api/v1/pools/{found['id']}/members/{workload}/release"
    console.print(_summary(client.post(path)))


@pools_app.command("rm")
@_reports_api_errors
def delete(pool: Annotated[str, typer.Argument(help="pool id or name")]) -> None:
    """Delete a pool (its available containers stop; assigned ones stay their users')."""
    client = ApiClient()
    found = _resolve(client, pool)
    client.delete(f"/api/v1/pools/{found['id']}")
    console.print(f"deleted pool {found['name']}")
