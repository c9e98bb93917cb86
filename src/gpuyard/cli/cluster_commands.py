"""`gpuyard clusters ...`: the clusters servers belong to (admins and operators)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.errors import _reports_api_errors, reports_api_errors
from gpuyard.cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    QuietOption,
    human_age,
    print_record,
    print_records,
)

clusters_app = typer.Typer(
    help="Clusters: docker hosts, Kubernetes clusters, simulated servers.", no_args_is_help=True
)
console = Console()

CLUSTER_COLUMNS = [
    Column("NAME", lambda c: c["name"]),
    Column("KIND", lambda c: c["kind"]),
    Column("AGE", lambda c: human_age(c["created_at"])),
    Column("ID", lambda c: c["id"], is_id=True),
]


@clusters_app.callback()
def clusters() -> None:
    """Clusters: docker hosts, Kubernetes clusters, simulated servers."""


@clusters_app.command("ls")
@_reports_api_errors
def list_clusters(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Every cluster."""
    every = ApiClient().all_pages("/api/v1/clusters")
    print_records(console, every, CLUSTER_COLUMNS, output, quiet)


@clusters_app.command("create")
@reports_api_errors({"name": "NAME", "kind": "--kind", "kubeconfig": "--kubeconfig"})
def create_cluster(
    name: Annotated[str, typer.Argument(help="cluster name")],
    kind: Annotated[str, typer.Option(help="docker, kubernetes or simulated")] = "docker",
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="kubernetes: the kubeconfig file (stored encrypted)"
        ),
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create a cluster; docker servers then join it with `gpuyard server add`."""
    body: dict[str, Any] = {"name": name, "kind": kind}
    if kubeconfig is not None:
        body["kubeconfig"] = kubeconfig.read_text(encoding="utf-8")
    made = ApiClient().post("/api/v1/clusters", body)
    said = f"created {made['kind']} cluster {made['name']} {made['id']}"
    print_record(console, made, output, [said])


@clusters_app.command("rm")
@_reports_api_errors
def delete_cluster(ref: Annotated[str, typer.Argument(help="name, id or id prefix")]) -> None:
    """Delete a cluster (refused while it has servers)."""
    client = ApiClient()
    cluster = client.resolve_cluster(ref)
    client.delete(f"/api/v1/clusters/{cluster['id']}")
    console.print(f"deleted cluster {cluster['name']}", markup=False)
