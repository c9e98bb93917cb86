"""Client commands over the REST API: login, servers, run, ps, stop, rm, logs, queue."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from gpuyard.cli import identity_commands as ids
from gpuyard.cli import image_commands
from gpuyard.cli.api_client import ApiClient, ApiError
from gpuyard.cli.credentials import DEFAULT_URL, load_credentials, save_credentials

console = Console()
err = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def _reports_api_errors(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            err.print(f"[red]error[/] {exc.detail}")
            for item in exc.errors:
                err.print(f"  {item.get('field')}: {item.get('message')}")
            raise typer.Exit(1) from None

    return wrapper


def _num(value: float) -> str:
    return f"{value:g}"


def _gpus(w: dict[str, Any]) -> str:
    if not w["gpu"]:
        return "-"
    where = ",".join(str(i) for i in w["gpu_indices"]) or "?"
    return f"{_num(w['gpu'])} [{where}]" if w["gpu_indices"] else _num(w["gpu"])


def login(
    email: Annotated[str, typer.Argument(help="account email")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    url: Annotated[str | None, typer.Option(help=f"server URL (default {DEFAULT_URL})")] = None,
) -> None:
    """Log in and remember the token for later commands."""
    target = url or load_credentials().url
    client = ApiClient(url=target, token="")
    result = client.post("/api/v1/auth/login", {"email": email, "password": password})
    path = save_credentials(target, result["access_token"])
    console.print(f"Logged in to {target} as {result['user']['email']} ({result['user']['role']})")
    console.print(f"token saved in {path}")


def servers(cluster: Annotated[str | None, typer.Option(help="cluster id")] = None) -> None:
    """List servers with capacity, allocation and GPUs."""
    data = ApiClient().get("/api/v1/servers", cluster_id=cluster, limit=1000)["data"]
    table = Table("NAME", "STATUS", "CPU", "RAM GB", "GPUS (used/total)", "GPU MODEL", "ID")
    for s in data:
        cap, used = s["capacity"], s["allocated"]
        models = sorted({g["model"] for g in s["gpus"]}) or ["-"]
        table.add_row(
            s["name"],
            s["status"],
            f"{_num(used['cpu'])}/{_num(cap['cpu'])}",
            f"{_num(used['ram_gb'])}/{_num(cap['ram_gb'])}",
            f"{_num(used['gpu'])}/{_num(cap['gpu'])}",
            ", ".join(models),
            s["id"],
        )
    console.print(table)


def run(
    image: Annotated[str, typer.Argument(help="container image")],
    command: Annotated[list[str] | None, typer.Argument(help="command and arguments")] = None,
    name: Annotated[str | None, typer.Option(help="workload name")] = None,
    cpu: Annotated[float, typer.Option(help="CPU cores (0.1 steps)")] = 1,
    ram: Annotated[float, typer.Option(help="RAM in GB")] = 1,
    storage: Annotated[float, typer.Option(help="storage in GB")] = 0,
    gpu: Annotated[float, typer.Option(help="whole GPUs, or a 0.1-0.9 share")] = 0,
    gpu_model: Annotated[str | None, typer.Option(help="e.g. H100")] = None,
    priority: Annotated[int, typer.Option(help="1 (lowest) to 5 (highest)")] = 3,
    cluster: Annotated[str | None, typer.Option(help="cluster id")] = None,
    replicas: Annotated[int, typer.Option()] = 1,
    gang: Annotated[bool, typer.Option(help="place all replicas or none")] = False,
    duration: Annotated[float | None, typer.Option(help="simulated: seconds to run")] = None,
    not_preemptible: Annotated[bool, typer.Option("--not-preemptible")] = False,
    files_path: Annotated[
        str | None, typer.Option(help="where its files are mounted (default /workspace)")
    ] = None,
    max_lifetime: Annotated[
        int | None, typer.Option(help="stop it this many seconds after it started (warned first)")
    ] = None,
) -> None:
    """Launch a workload."""
    body: dict[str, Any] = {
        "image": image,
        "cpu": cpu,
        "ram_gb": ram,
        "storage_gb": storage,
        "gpu": gpu,
        "priority": priority,
        "replicas": replicas,
        "gang": gang,
        "preemptible": not not_preemptible,
    }
    for key, value in (
        ("name", name),
        ("command", command or None),
        ("gpu_model", gpu_model),
        ("cluster_id", cluster),
        ("duration_s", duration),
        ("files_path", files_path),
        ("max_lifetime_s", max_lifetime),
    ):
        if value is not None:
            body[key] = value
    w = ApiClient().post("/api/v1/workloads", body)
    console.print(f"{w['name']} {w['id']} {w['status']}: {w['reason'] or ''}")


def ps(
    all_: Annotated[bool, typer.Option("--all", "-a", help="include finished workloads")] = False,
    status: Annotated[list[str] | None, typer.Option(help="filter by status")] = None,
) -> None:
    """List workloads: where they run and why they wait."""
    statuses = status or (
        None if all_ else ["pending", "scheduled", "starting", "running", "preempted", "lost"]
    )
    data = ApiClient().get("/api/v1/workloads", status=statuses, limit=1000)["data"]
    table = Table("NAME", "STATUS", "PRIO", "CPU", "RAM", "GPU [idx]", "SERVER", "REASON", "ID")
    for w in data:
        table.add_row(
            w["name"],
            w["status"],
            str(w["priority"]),
            _num(w["cpu"]),
            _num(w["ram_gb"]),
            _gpus(w),
            w["server_name"] or "-",
            # "running on <server>" repeats the SERVER column; say only why others wait.
            "" if w["status"] == "running" else (w["reason"] or ""),
            w["id"],
        )
    console.print(table)


def stop(ref: Annotated[str, typer.Argument(help="workload id or name")]) -> None:
    """Stop a workload (it stays listed as stopped)."""
    client = ApiClient()
    w = client.post(f"/api/v1/workloads/{client.resolve_workload(ref)['id']}/stop")
    console.print(f"{w['name']} {w['status']}")


def rm(ref: Annotated[str, typer.Argument(help="workload id or name")]) -> None:
    """Delete a workload (stopping it first if needed)."""
    client = ApiClient()
    w = client.resolve_workload(ref)
    client.delete(f"/api/v1/workloads/{w['id']}")
    console.print(f"{w['name']} deleted")


def logs(
    ref: Annotated[str, typer.Argument(help="workload id or name")],
    tail: Annotated[int, typer.Option(help="last N lines")] = 200,
) -> None:
    """Print a workload's log."""
    client = ApiClient()
    w = client.resolve_workload(ref)
    text = client.request("GET", f"/api/v1/workloads/{w['id']}/logs", params={"tail": tail}).text
    console.print(text, end="", markup=False, highlight=False)


def queue() -> None:
    """Pending workloads in the order the scheduler considers them, with reasons."""
    data = ApiClient().get("/api/v1/queue")["data"]
    table = Table("#", "NAME", "PRIO", "GPU", "WAITING BECAUSE", "ID")
    for e in data:
        w = e["workload"]
        table.add_row(
            str(e["position"]), w["name"], str(w["priority"]), _num(w["gpu"]), e["reason"], w["id"]
        )
    console.print(table)


def add_server(
    name: Annotated[str, typer.Argument(help="server name")],
    cluster: Annotated[str, typer.Option(help="id of a docker cluster")],
    agent_url: Annotated[str, typer.Option(help="the agent, e.g. http://10.0.0.7:8090")],
    agent_token: Annotated[
        str, typer.Option(envvar="GPUYARD_AGENT_TOKEN", help="the agent's token")
    ],
    host_ports: Annotated[
        str | None, typer.Option(help="this server's own host port range, e.g. 20000-20999")
    ] = None,
) -> None:
    """Register a docker server: its capacity comes from the agent's inventory."""
    body = {"name": name, "cluster_id": cluster, "agent_url": agent_url}
    body["agent_token"] = agent_token
    if host_ports:
        body["host_ports"] = host_ports
    s = ApiClient().post("/api/v1/servers", body)
    console.print(f"{s['name']} {s['status']}: {s['capacity']} ({len(s['gpus'])} GPUs)")


def register(app: typer.Typer) -> None:
    commands: list[Callable[..., None]] = [login, servers, run, ps, stop, rm, logs, queue]
    commands += [add_server]
    commands += [ids.whoami, ids.logout, ids.invite, ids.register]
    for command in commands:
        app.command()(_reports_api_errors(command))
    image_commands.register(app, _reports_api_errors)
