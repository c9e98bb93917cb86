"""Client commands over the REST API: login, servers, run, ps, stop, rm, logs, queue."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli import exec_command, image_commands, top_command, workload_commands
from gpuyard.cli import identity_commands as ids
from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.credentials import DEFAULT_URL, save_credentials
from gpuyard.cli.errors import EXIT_REFUSED, _reports_api_errors
from gpuyard.cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    QuietOption,
    human_age,
    human_eta,
    number,
    print_record,
    print_records,
)

console = Console()
err = Console(stderr=True)


def say(text: str) -> None:
    """Progress for a person, on stderr (stdout stays for what scripts parse), unwrapped."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _gpus(w: dict[str, Any]) -> str:
    if not w["gpu"]:
        return "-"
    where = ",".join(str(i) for i in w["gpu_indices"]) or "?"
    return f"{number(w['gpu'])} [{where}]" if w["gpu_indices"] else number(w["gpu"])


def login(
    email: Annotated[str, typer.Argument(help="account email")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    url: Annotated[
        str | None, typer.Option(help=f"server URL (default: the current context's, {DEFAULT_URL})")
    ] = None,
    context: Annotated[
        str | None, typer.Option(help="save the login under this name (default: host:port)")
    ] = None,
) -> None:
    """Log in and remember the token for later commands."""
    client = ApiClient(url=url, token="")
    result = client.post("/api/v1/auth/login", {"email": email, "password": password})
    path = save_credentials(client.url, result["access_token"], context)
    user = result["user"]
    console.print(f"Logged in to {client.url} as {user['email']} ({user['role']})", markup=False)
    console.print(f"token saved in {path}", markup=False)


SERVER_COLUMNS = [
    Column("NAME", lambda s: s["name"]),
    Column("STATUS", lambda s: s["status"]),
    Column("CPU", lambda s: f"{number(s['allocated']['cpu'])}/{number(s['capacity']['cpu'])}"),
    Column(
        "RAM GB",
        lambda s: f"{number(s['allocated']['ram_gb'])}/{number(s['capacity']['ram_gb'])}",
    ),
    Column("GPUS", lambda s: f"{number(s['allocated']['gpu'])}/{number(s['capacity']['gpu'])}"),
    Column(
        "GPU MODEL",
        lambda s: ", ".join(sorted({g["model"] for g in s["gpus"]})) or "-",
        shrinks=True,
    ),
    Column("CLUSTER", lambda s: s["cluster_id"], wide_only=True, is_id=True),
    Column("ID", lambda s: s["id"], is_id=True),
]


def servers(
    cluster: Annotated[str | None, typer.Option(help="cluster id")] = None,
    output: OutputOption = OutputFormat.TABLE,
    quiet: QuietOption = False,
) -> None:
    """Servers: capacity, allocation (used/total) and GPUs."""
    data = ApiClient().all_pages("/api/v1/servers", cluster_id=cluster)
    print_records(console, data, SERVER_COLUMNS, output, quiet)


#: Statuses a workload does not leave by itself (``run --wait`` stops waiting there).
SETTLED_STATUSES = {"running", "succeeded", "failed", "stopped"}


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--env")
        env[key] = value
    return env


def run(
    image: Annotated[str, typer.Argument(help="container image")],
    command: Annotated[list[str] | None, typer.Argument(help="command and arguments")] = None,
    name: Annotated[str | None, typer.Option(help="workload name")] = None,
    cpu: Annotated[float, typer.Option(help="CPU cores (0.1 steps)")] = 1,
    ram: Annotated[float, typer.Option(help="RAM in GB")] = 1,
    storage: Annotated[float, typer.Option(help="storage in GB")] = 0,
    gpu: Annotated[
        float, typer.Option(help="whole GPUs, or a share of one (default: 0.05-0.95, 0.05 steps)")
    ] = 0,
    gpu_memory: Annotated[
        float | None, typer.Option(help="GB of GPU memory a share reserves on its device")
    ] = None,
    gpu_model: Annotated[str | None, typer.Option(help="e.g. H100")] = None,
    priority: Annotated[int, typer.Option(help="1 (lowest) to 5 (highest)")] = 3,
    cluster: Annotated[str | None, typer.Option(help="cluster name or id")] = None,
    team: Annotated[
        str | None, typer.Option(help="team name or id (counts against its quota)")
    ] = None,
    replicas: Annotated[int, typer.Option(help="copies placed together")] = 1,
    gang: Annotated[bool, typer.Option(help="place all replicas or none")] = False,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE, repeatable")
    ] = None,
    port: Annotated[
        list[int] | None, typer.Option("--port", "-p", help="container port to publish")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="simulated: seconds to run")] = None,
    not_preemptible: Annotated[
        bool, typer.Option("--not-preemptible", help="higher priorities may not evict it")
    ] = False,
    files_path: Annotated[
        str | None, typer.Option(help="where its files are mounted (default /workspace)")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="block until it runs or fails, showing progress")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="then follow its log (implies --wait)")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="seconds --wait waits at most (exit 1 when it passes)")
    ] = 600,
    output: OutputOption = OutputFormat.TABLE,
    max_lifetime: Annotated[
        int | None, typer.Option(help="stop it this many seconds after it started (warned first)")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="submit nothing: say where it would go now, or why it would wait"
        ),
    ] = False,
) -> None:
    """Launch a workload (with --dry-run: only plan it)."""
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
        "env": _env_pairs(env or []),
        "ports": list(port or []),
    }
    for key, value in (
        ("name", name),
        ("command", command or None),
        ("gpu_model", gpu_model),
        ("gpu_memory_gb", gpu_memory),
        ("duration_s", duration),
        ("files_path", files_path),
        ("max_lifetime_s", max_lifetime),
    ):
        if value is not None:
            body[key] = value
    client = ApiClient()
    if cluster is not None:
        body["cluster_id"] = client.resolve_cluster(cluster)["id"]
    if team is not None:
        body["team_id"] = client.resolve_listed("/api/v1/teams", team, "team")["id"]
    if dry_run:
        _print_plan(client.post("/api/v1/workloads/plan", body), output)
        return
    w = client.post("/api/v1/workloads", body)
    if output is not OutputFormat.TABLE and not (wait or follow):
        print_record(console, w, output, [])
        return
    say(f"{w['name']} {w['id']} {w['status']}: {w['reason'] or ''}")
    if not (wait or follow):
        return
    w = _wait_until_settled(client, w, timeout)
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        print_record(console, w, output, [])
    if follow and w["status"] in ("running", "succeeded", "failed"):
        # A short job may have ended already: its log is still there to print.
        _print_log(client, w["id"], tail=200, follow=w["status"] == "running")
        w = client.get(f"/api/v1/workloads/{w['id']}")
    if w["status"] not in ("running", "succeeded"):
        say(f"{w['name']} {w['status']}: {w['reason'] or ''}")
        raise typer.Exit(EXIT_REFUSED)


def _print_plan(plan: dict[str, Any], output: OutputFormat) -> None:
    """A plan (POST /workloads/plan): where each replica would go and whom it would
    preempt, or why it would wait and when it should start."""
    if output is not OutputFormat.TABLE:
        print_record(console, plan, output, [])
        return
    if plan["starts_now"]:
        say("would start now (dry run: nothing submitted)")
        for p in plan["placements"]:
            gpus = ",".join(str(i) for i in p["gpu_indices"])
            say(
                f"  replica {p['replica']} on {p['server_name']}"
                + (f" GPUs [{gpus}]" if gpus else "")
            )
        for v in plan["preempts"]:
            say(f"  preempting {v['name']} replica {v['replica']} on {v['server_name']}")
        if plan["preempts_hidden"]:
            say(f"  preempting {plan['preempts_hidden']} replica(s) of workloads you cannot see")
        return
    start = plan["estimated_start"]
    say(f"would wait (dry run: nothing submitted): {plan['code']}: {plan['reason']}")
    say(f"  estimated start: {start}" if start else "  estimated start: unknown")


def _wait_until_settled(client: ApiClient, w: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Poll until the workload runs or ends, printing each change of status or reason."""
    deadline = time.monotonic() + timeout
    seen = (w["status"], w["reason"])
    while w["status"] not in SETTLED_STATUSES:
        if time.monotonic() > deadline:
            say(f"still {w['status']} after {timeout:g}s: {w['reason'] or ''}")
            raise typer.Exit(EXIT_REFUSED)
        time.sleep(0.5)
        w = client.get(f"/api/v1/workloads/{w['id']}")
        if (w["status"], w["reason"]) != seen:
            seen = (w["status"], w["reason"])
            say(f"{w['status']}: {w['reason'] or ''}")
    return w


def _waiting_reason(w: dict[str, Any]) -> str:
    # "running on <server>" repeats the SERVER column; say only why others wait.
    return "" if w["status"] == "running" else (w["reason"] or "")


WORKLOAD_COLUMNS = [
    Column("NAME", lambda w: w["name"]),
    Column("STATUS", lambda w: w["status"]),
    Column("OWNER", lambda w: w["owner"], wide_only=True),
    Column("PRIO", lambda w: str(w["priority"]), drop_rank=2),
    Column("CPU", lambda w: number(w["cpu"]), drop_rank=4),
    Column("RAM", lambda w: number(w["ram_gb"]), drop_rank=3),
    Column("GPU [idx]", _gpus),
    Column("SERVER", lambda w: w["server_name"] or "-"),
    Column("AGE", lambda w: human_age(w["created_at"]), drop_rank=1),
    Column("IMAGE", lambda w: w["image"], wide_only=True),
    Column("REASON", _waiting_reason, shrinks=True),
    Column("ID", lambda w: w["id"], is_id=True),
]
ACTIVE_STATUSES = ["pending", "scheduled", "starting", "running", "preempted", "lost"]


def ps(
    all_: Annotated[bool, typer.Option("--all", "-a", help="include finished workloads")] = False,
    status: Annotated[list[str] | None, typer.Option(help="filter by status")] = None,
    output: OutputOption = OutputFormat.TABLE,
    quiet: QuietOption = False,
) -> None:
    """List workloads: where they run and why they wait."""
    statuses = status or (None if all_ else ACTIVE_STATUSES)
    data = ApiClient().all_pages("/api/v1/workloads", status=statuses)
    columns = WORKLOAD_COLUMNS
    if len({w["owner_id"] for w in data}) > 1:  # someone who sees others' work
        columns = [
            Column(c.header, c.value, drop_rank=5) if c.header == "OWNER" else c
            for c in WORKLOAD_COLUMNS
        ]
    print_records(console, data, columns, output, quiet)


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
    ref: Annotated[str, typer.Argument(help="workload id, id prefix or name")],
    tail: Annotated[int, typer.Option(help="last N lines")] = 200,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing as it writes (Ctrl-C stops)")
    ] = False,
) -> None:
    """Print a workload's log."""
    client = ApiClient()
    _print_log(client, client.resolve_workload(ref)["id"], tail, follow)


def _print_log(client: ApiClient, workload_id: str, tail: int, follow: bool) -> None:
    params = {"tail": tail, "follow": follow}
    try:
        with client.stream("GET", f"/api/v1/workloads/{workload_id}/logs", params=params) as r:
            for chunk in r.iter_text():
                sys.stdout.write(chunk)
                sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


EVENT_COLUMNS = [
    Column("AGE", lambda e: human_age(e["at"])),
    Column("AT", lambda e: e["at"], wide_only=True),
    Column("FROM", lambda e: e["from_status"] or "-"),
    Column("TO", lambda e: e["to_status"]),
    Column("REASON", lambda e: e["reason"] or "", shrinks=True),
]


def events(
    ref: Annotated[str, typer.Argument(help="workload id, id prefix or name")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """A workload's status changes and why, oldest first."""
    client = ApiClient()
    w = client.resolve_workload(ref)
    data = client.all_pages(f"/api/v1/workloads/{w['id']}/events")
    print_records(console, data, EVENT_COLUMNS, output)


def describe(
    ref: Annotated[str, typer.Argument(help="workload id, id prefix or name")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Everything about a workload, with its events."""
    client = ApiClient()
    w = client.resolve_workload(ref)
    history = client.all_pages(f"/api/v1/workloads/{w['id']}/events")
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        print_record(console, {**w, "events": history}, output, [])
        return
    print_record(console, w, output, describe_lines(w))
    console.print("Events:")
    print_records(console, history, EVENT_COLUMNS, output)


def describe_lines(w: dict[str, Any]) -> list[str]:
    """The 'key: value' lines of ``gpuyard describe`` for a workload."""
    request = (
        f"cpu {number(w['cpu'])}, ram {number(w['ram_gb'])} GB, "
        f"storage {number(w['storage_gb'])} GB, gpu {number(w['gpu'])}"
        + (f" ({w['gpu_model']})" if w["gpu_model"] else "")
        + (f", {number(w['gpu_memory_gb'])} GB GPU memory" if w.get("gpu_memory_gb") else "")
    )
    lines = [
        f"Name:        {w['name']}",
        f"Id:          {w['id']}",
        f"Owner:       {w['owner']}",
        f"Status:      {w['status']}" + (f" ({w['reason']})" if w["reason"] else ""),
        f"Image:       {w['image']}",
        f"Command:     {' '.join(w['command']) if w['command'] else '-'}",
        f"Request:     {request}",
        f"Priority:    {w['priority']}" + ("" if w["preemptible"] else ", not preemptible"),
        f"Replicas:    {w['replicas']}" + (" (gang)" if w["gang"] else ""),
        f"Created:     {w['created_at']} ({human_age(w['created_at'])} ago)",
    ]
    if w["started_at"]:
        lines.append(f"Started:     {w['started_at']}")
    if w["finished_at"]:
        lines.append(f"Finished:    {w['finished_at']}")
    for p in w["placements"]:
        gpus = ",".join(str(i) for i in p["gpu_indices"]) or "-"
        lines.append(f"Placement:   replica {p['replica']} on {p['server_name']}, gpus {gpus}")
    for port in w["ports"]:
        lines.append(f"Port:        {port['container_port']} -> {port['url'] or port['host_port']}")
        if port.get("route_url"):  # per-user routing (docs/operations.md)
            lines.append(f"Route:       {port['route_url']}")
    if w["env"]:
        lines.append("Env:         " + ", ".join(sorted(w["env"])))
    if w["preemption_count"]:
        lines.append(f"Preempted:   {w['preemption_count']} times")
    return lines


QUEUE_COLUMNS = [
    Column("#", lambda e: str(e["position"])),
    Column("NAME", lambda e: e["workload"]["name"]),
    Column("OWNER", lambda e: e["workload"]["owner"], wide_only=True),
    Column("PRIO", lambda e: str(e["workload"]["priority"]), drop_rank=2),
    Column("GPU", lambda e: number(e["workload"]["gpu"])),
    Column("AGE", lambda e: human_age(e["workload"]["created_at"]), drop_rank=1),
    Column("START", lambda e: human_eta(e.get("estimated_start")), drop_rank=3),
    Column("WAITING BECAUSE", lambda e: e["reason"], shrinks=True),
    Column("ID", lambda e: e["workload"]["id"], is_id=True),
]


def queue(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Pending work in scheduling order, with why each waits."""
    data = ApiClient().get("/api/v1/queue")["data"]
    if quiet:
        for entry in data:
            typer.echo(entry["workload"]["id"])
        return
    print_records(console, data, QUEUE_COLUMNS, output)


def add_server(
    name: Annotated[str, typer.Argument(help="server name")],
    cluster: Annotated[
        str, typer.Option(help="a docker cluster's name or id (`gpuyard clusters create`)")
    ],
    agent_url: Annotated[str, typer.Option(help="the agent, e.g. http://10.0.0.7:8090")],
    agent_token: Annotated[
        str, typer.Option(envvar="GPUYARD_AGENT_TOKEN", help="the agent's token")
    ],
    host_ports: Annotated[
        str | None, typer.Option(help="this server's own host port range, e.g. 20000-20999")
    ] = None,
) -> None:
    """Register a docker server (its capacity comes from its agent)."""
    client = ApiClient()
    body = {
        "name": name,
        "cluster_id": client.resolve_cluster(cluster)["id"],
        "agent_url": agent_url,
        "agent_token": agent_token,
    }
    if host_ports:
        body["host_ports"] = host_ports
    s = client.post("/api/v1/servers", body)
    console.print(f"{s['name']} {s['status']}: {s['capacity']} ({len(s['gpus'])} GPUs)")


def register(app: typer.Typer) -> None:
    panels: dict[str, list[Callable[..., None]]] = {
        "Workloads": [
            run,
            ps,
            describe,
            events,
            logs,
            workload_commands.resize,
            workload_commands.files,
            workload_commands.cp,
            stop,
            rm,
            queue,
        ],
        "Fleet": [servers, top_command.top],
        "Account": [login, ids.logout, ids.whoami, ids.register, ids.invite],
    }
    for panel, commands in panels.items():
        for command in commands:
            app.command(rich_help_panel=panel)(_reports_api_errors(command))
    app.command(name="exec", rich_help_panel="Workloads")(_reports_api_errors(exec_command.exec_))
    # `gpuyard server add` since the server group exists; the old spelling keeps working.
    app.command(hidden=True)(_reports_api_errors(add_server))
    image_commands.register(app, _reports_api_errors)
