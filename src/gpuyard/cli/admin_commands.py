"""Commands that run the fleet and its people over the REST API: `gpuyard server ...`
(describe, drain, maintenance, online, events, rm), `users`, `teams`, `tokens`, and the
audit log's `audit ls`. Each answers with the permission the API checks; the CLI adds none."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli import host_ssh_commands, server_commands
from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.client_commands import add_server
from gpuyard.cli.errors import FIELD_FLAGS, _reports_api_errors, reports_api_errors
from gpuyard.cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    QuietOption,
    human_age,
    number,
    print_record,
    print_records,
)

console = Console()

server_app = typer.Typer(
    help="One server: describe, drain, maintenance, events.", no_args_is_help=True
)
users_app = typer.Typer(help="Accounts (admins).", no_args_is_help=True)
teams_app = typer.Typer(help="Teams, their quotas and members.", no_args_is_help=True)
tokens_app = typer.Typer(help="Your API tokens for scripts and CI.", no_args_is_help=True)
invites_app = typer.Typer(help="Invites: pending, used, expired (admins).", no_args_is_help=True)

EVENT_COLUMNS = [
    Column("AGE", lambda e: human_age(e["at"])),
    Column("FROM", lambda e: e["from_status"] or "-"),
    Column("TO", lambda e: e["to_status"]),
    Column("REASON", lambda e: e["reason"] or "", shrinks=True),
]


# ---- servers --------------------------------------------------------------------------


@server_app.callback()
def server() -> None:
    """One server: describe, drain, maintenance, events, cleanup."""


def _server_lines(s: dict[str, Any]) -> list[str]:
    cap, used = s["capacity"], s["allocated"]
    lines = [
        f"Name:        {s['name']}",
        f"Id:          {s['id']}",
        f"Status:      {s['status']}",
        f"Cluster:     {s['cluster_id']}",
        f"CPU:         {number(used['cpu'])}/{number(cap['cpu'])} cores",
        f"RAM:         {number(used['ram_gb'])}/{number(cap['ram_gb'])} GB",
        f"Storage:     {number(used['storage_gb'])}/{number(cap['storage_gb'])} GB",
        f"GPUs:        {number(used['gpu'])}/{number(cap['gpu'])}",
    ]
    for gpu in s["gpus"]:
        lines.append(f"  GPU {gpu['index']}:     {gpu['model']} {gpu.get('uuid') or ''}".rstrip())
    if s.get("labels"):
        lines.append(
            "Labels:      " + ", ".join(f"{k}={v}" for k, v in sorted(s["labels"].items()))
        )
    return lines


@server_app.command("describe")
@_reports_api_errors
def describe_server(
    ref: Annotated[str, typer.Argument(help="server name, id or id prefix")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Everything about a server, with its recent events."""
    client = ApiClient()
    found = client.resolve_server(ref)
    history = client.get(f"/api/v1/servers/{found['id']}/events", limit=20)["data"]
    if output in (OutputFormat.JSON, OutputFormat.YAML):
        print_record(console, {**found, "events": history}, output, [])
        return
    print_record(console, found, output, _server_lines(found))
    console.print("Events:")
    print_records(console, history, EVENT_COLUMNS, output)


def _set_status(ref: str, status: str) -> None:
    client = ApiClient()
    found = client.resolve_server(ref)
    changed = client.request(
        "PATCH", f"/api/v1/servers/{found['id']}", json={"status": status}
    ).json()
    console.print(f"{changed['name']} {changed['status']}", markup=False)


@server_app.command("drain")
@_reports_api_errors
def drain(ref: Annotated[str, typer.Argument(help="server name, id or id prefix")]) -> None:
    """Place nothing new there; what runs keeps running."""
    _set_status(ref, "draining")


@server_app.command("maintenance")
@_reports_api_errors
def maintenance(ref: Annotated[str, typer.Argument(help="server name, id or id prefix")]) -> None:
    """Take a server out for maintenance."""
    _set_status(ref, "maintenance")


@server_app.command("online")
@_reports_api_errors
def online(ref: Annotated[str, typer.Argument(help="server name, id or id prefix")]) -> None:
    """Put a drained or maintained server back in service."""
    _set_status(ref, "online")


@server_app.command("events")
@_reports_api_errors
def server_events(
    ref: Annotated[str, typer.Argument(help="server name, id or id prefix")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """A server's status changes and why, newest first."""
    client = ApiClient()
    found = client.resolve_server(ref)
    history = client.all_pages(f"/api/v1/servers/{found['id']}/events")
    print_records(console, history, EVENT_COLUMNS, output)


@server_app.command("rm")
@_reports_api_errors
def remove_server(ref: Annotated[str, typer.Argument(help="server name, id or id prefix")]) -> None:
    """Remove a server (refused while workloads hold resources there)."""
    client = ApiClient()
    found = client.resolve_server(ref)
    client.delete(f"/api/v1/servers/{found['id']}")
    console.print(f"removed {found['name']}", markup=False)


# ---- users ----------------------------------------------------------------------------

USER_COLUMNS = [
    Column("EMAIL", lambda u: u["email"]),
    Column("ROLE", lambda u: u["role"]),
    Column("ACTIVE", lambda u: "yes" if u["is_active"] else "no"),
    Column("AGE", lambda u: human_age(u["created_at"]), drop_rank=1),
    Column("ID", lambda u: u["id"], is_id=True),
]


@users_app.callback()
def users() -> None:
    """Accounts (admins)."""


def _user(client: ApiClient, ref: str) -> dict[str, Any]:
    """A user by e-mail, id or unique id prefix."""
    return client.resolve_listed("/api/v1/users", ref, "user", name_key="email")


@users_app.command("ls")
@_reports_api_errors
def list_users(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Every account."""
    print_records(console, ApiClient().all_pages("/api/v1/users"), USER_COLUMNS, output, quiet)


@users_app.command("set")
@reports_api_errors({"role": "--role", "is_active": "--active/--disabled"})
def set_user(
    ref: Annotated[str, typer.Argument(help="e-mail, id or id prefix")],
    role: Annotated[str | None, typer.Option(help="admin, operator or user")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--disabled", help="enable or disable the account")
    ] = None,
) -> None:
    """Change a user's role or disable the account (its sessions end at once)."""
    changes: dict[str, Any] = {}
    if role is not None:
        changes["role"] = role
    if active is not None:
        changes["is_active"] = active
    if not changes:
        raise typer.BadParameter("give --role, --active or --disabled")
    client = ApiClient()
    user = _user(client, ref)
    changed = client.request("PATCH", f"/api/v1/users/{user['id']}", json=changes).json()
    state = "active" if changed["is_active"] else "disabled"
    console.print(f"{changed['email']} {changed['role']}, {state}", markup=False)


@users_app.command("rm")
@_reports_api_errors
def remove_user(ref: Annotated[str, typer.Argument(help="e-mail, id or id prefix")]) -> None:
    """Delete an account."""
    client = ApiClient()
    user = _user(client, ref)
    client.delete(f"/api/v1/users/{user['id']}")
    console.print(f"deleted {user['email']}", markup=False)


# ---- teams ----------------------------------------------------------------------------


def _quota(q: dict[str, Any] | None) -> str:
    if not q:
        return "-"
    parts = [
        f"{label} {number(q[key])}"
        for key, label in (("gpu", "gpu"), ("cpu", "cpu"), ("ram_gb", "ram"))
        if q.get(key) is not None
    ]
    return ", ".join(parts) or "-"


TEAM_COLUMNS = [
    Column("NAME", lambda t: t["name"]),
    Column("QUOTA", lambda t: _quota(t["quota"]), shrinks=True),
    Column("MEMBERS", lambda t: str(len(t["members"]))),
    Column("ID", lambda t: t["id"], is_id=True),
]


@teams_app.callback()
def teams() -> None:
    """Teams, their quotas and members."""


def _team(client: ApiClient, ref: str) -> dict[str, Any]:
    """A team by name, id or unique id prefix."""
    return client.resolve_listed("/api/v1/teams", ref, "team")


@teams_app.command("ls")
@_reports_api_errors
def list_teams(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """The teams you may see, with quotas."""
    print_records(console, ApiClient().all_pages("/api/v1/teams"), TEAM_COLUMNS, output, quiet)


QUOTA_FLAGS = {"name": "NAME", "quota": "--gpu/--cpu/--ram"}


def _quota_body(gpu: float | None, cpu: float | None, ram: float | None) -> dict[str, float]:
    return {
        key: value
        for key, value in (("gpu", gpu), ("cpu", cpu), ("ram_gb", ram))
        if value is not None
    }


@teams_app.command("create")
@reports_api_errors(QUOTA_FLAGS)
def create_team(
    name: Annotated[str, typer.Argument(help="team name")],
    gpu: Annotated[float | None, typer.Option(help="quota: GPUs")] = None,
    cpu: Annotated[float | None, typer.Option(help="quota: CPU cores")] = None,
    ram: Annotated[float | None, typer.Option(help="quota: RAM in GB")] = None,
    members_can_read: Annotated[
        bool, typer.Option(help="members see each other's workloads")
    ] = False,
) -> None:
    """Create a team, with a quota when given."""
    body: dict[str, Any] = {"name": name, "members_can_read": members_can_read}
    quota = _quota_body(gpu, cpu, ram)
    if quota:
        body["quota"] = quota
    made = ApiClient().post("/api/v1/teams", body)
    console.print(
        f"created team {made['name']} {made['id']} (quota {_quota(made['quota'])})", markup=False
    )


@teams_app.command("quota")
@reports_api_errors(QUOTA_FLAGS)
def set_quota(
    ref: Annotated[str, typer.Argument(help="team name, id or id prefix")],
    gpu: Annotated[float | None, typer.Option(help="GPUs")] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU cores")] = None,
    ram: Annotated[float | None, typer.Option(help="RAM in GB")] = None,
    none: Annotated[bool, typer.Option("--none", help="remove the quota")] = False,
) -> None:
    """Set (admins) a team's quota; unset resources are unlimited."""
    client = ApiClient()
    team = _team(client, ref)
    quota = None if none else _quota_body(gpu, cpu, ram)
    if quota == {}:
        raise typer.BadParameter("give --gpu, --cpu, --ram or --none")
    changed = client.request("PATCH", f"/api/v1/teams/{team['id']}", json={"quota": quota}).json()
    console.print(f"{changed['name']} quota {_quota(changed['quota'])}", markup=False)


HIERARCHY_FLAGS = {
    "hierarchy.parent_id": "--parent",
    "hierarchy.weight": "--weight",
    "hierarchy.guarantee.gpu": "--gpu",
    "hierarchy.guarantee.cpu": "--cpu",
    "hierarchy.guarantee.ram_gb": "--ram",
    "hierarchy.guarantee.storage_gb": "--storage",
    "hierarchy.guarantee.gpu_models": "--gpu-model",
    "hierarchy.gpu_model_limits": "--gpu-model-limit",
    "hierarchy.weights": "--resource-weight",
    "hierarchy.gpu_model_weights": "--gpu-model-weight",
}

#: ``--resource-weight`` names as the other flags spell them, and the API's keys.
RESOURCE_WEIGHT_KEYS = {"cpu": "cpu", "ram": "ram_gb", "storage": "storage_gb", "gpu": "gpu"}


def _named_weights(
    values: list[str], flag: str, names: dict[str, str] | None = None
) -> dict[str, int]:
    """``NAME=WEIGHT`` options as the API's ``{name: weight}``; ``names`` renames the
    flag's spelling to the API's (the API checks names and values)."""
    out: dict[str, int] = {}
    for value in values:
        name, sep, amount = value.rpartition("=")
        name = name.strip()
        if not sep or not name or not amount.strip().isdigit():
            raise typer.BadParameter(
                f"{value!r}: expected NAME=WEIGHT, a whole number, e.g. gpu=4", param_hint=flag
            )
        out[(names or {}).get(name, name)] = int(amount)
    return out


def _gpu_models(values: list[str], flag: str = "--gpu-model") -> dict[str, float]:
    """``MODEL=GPUS`` options as the API's ``{model: GPUs}`` (the API checks the values)."""
    out: dict[str, float] = {}
    for value in values:
        model, sep, amount = value.rpartition("=")
        try:
            gpus = float(amount)
        except ValueError:
            gpus = math.nan
        if not sep or not model.strip() or not math.isfinite(gpus):
            raise typer.BadParameter(
                f"{value!r}: expected MODEL=GPUS, e.g. H100=8", param_hint=flag
            )
        out[model.strip()] = gpus
    return out


@teams_app.command("place")
@reports_api_errors(HIERARCHY_FLAGS)
def place_team(
    ref: Annotated[str, typer.Argument(help="team name, id or id prefix")],
    parent: Annotated[
        str | None, typer.Option(help="department team (name or id); omit: top level")
    ] = None,
    gpu: Annotated[float, typer.Option(help="guarantee: GPUs")] = 0,
    cpu: Annotated[float, typer.Option(help="guarantee: CPU cores")] = 0,
    ram: Annotated[float, typer.Option(help="guarantee: RAM in GB")] = 0,
    storage: Annotated[float, typer.Option(help="guarantee: storage in GB")] = 0,
    weight: Annotated[int, typer.Option(help="share of idle capacity among siblings")] = 1,
    gpu_model: Annotated[
        list[str] | None,
        typer.Option(
            help="guarantee: GPUs of one model, MODEL=GPUS (repeatable; a part of --gpu, "
            "reclaimed for work pinned to that model)"
        ),
    ] = None,
    gpu_model_limit: Annotated[
        list[str] | None,
        typer.Option(
            help="limit: GPUs of one model held at once at most, MODEL=GPUS (repeatable; "
            "a department's covers its teams)"
        ),
    ] = None,
    resource_weight: Annotated[
        list[str] | None,
        typer.Option(
            help="over-quota weight of one resource apart from --weight, RESOURCE=WEIGHT "
            "(cpu, ram, storage or gpu; repeatable)"
        ),
    ] = None,
    gpu_model_weight: Annotated[
        list[str] | None,
        typer.Option(
            help="over-quota weight of one GPU model, MODEL=WEIGHT (repeatable): that "
            "model's idle GPUs are divided apart, by it"
        ),
    ] = None,
) -> None:
    """Set (admins) a team's place in the quota tree: its department, its guarantee (lent
    while idle, reclaimed by preemption; per GPU model with --gpu-model), its over-quota
    weights (--weight for every resource, apart per resource or GPU model) and its
    per-GPU-model limits (--gpu-model-limit). Replaces them all."""
    client = ApiClient()
    team = _team(client, ref)
    parent_id = _team(client, parent)["id"] if parent is not None else None
    body = {
        "hierarchy": {
            "parent_id": parent_id,
            "guarantee": {
                "gpu": gpu,
                "cpu": cpu,
                "ram_gb": ram,
                "storage_gb": storage,
                "gpu_models": _gpu_models(gpu_model or []),
            },
            "weight": weight,
            "gpu_model_limits": _gpu_models(gpu_model_limit or [], "--gpu-model-limit"),
            "weights": _named_weights(
                resource_weight or [], "--resource-weight", RESOURCE_WEIGHT_KEYS
            ),
            "gpu_model_weights": _named_weights(gpu_model_weight or [], "--gpu-model-weight"),
        }
    }
    changed = client.request("PATCH", f"/api/v1/teams/{team['id']}", json=body).json()
    placed = changed["hierarchy"]
    models = "".join(
        f" ({_num(n)} {m})" for m, n in (placed["guarantee"].get("gpu_models") or {}).items()
    )
    limits = ", ".join(f"{_num(n)} {m}" for m, n in (placed.get("gpu_model_limits") or {}).items())
    weights = {**(placed.get("weights") or {}), **(placed.get("gpu_model_weights") or {})}
    apart = ", ".join(f"{name} {w}" for name, w in weights.items())
    console.print(
        f"{changed['name']}: parent {placed['parent_id'] or '-'}, "
        f"guarantee {_amounts(placed['guarantee'])}{models}, weight {placed['weight']}"
        + (f" ({apart})" if apart else "")
        + (f", at most {limits}" if limits else ""),
        markup=False,
    )


def _amounts(amounts: dict[str, float]) -> str:
    parts = [
        f"{_num(amounts[key])}{unit}"
        for key, unit in (
            ("gpu", " gpu"),
            ("cpu", " cpu"),
            ("ram_gb", "G ram"),
            ("storage_gb", "G disk"),
        )
        if amounts.get(key)
    ]
    return ", ".join(parts) or "0"


def _num(value: float) -> str:
    return f"{value:g}"


def _hours(amounts: dict[str, float]) -> str:
    """Decayed usage (core-, GB- and GPU-hours)."""
    parts = [
        f"{_num(amounts[key])}{unit}"
        for key, unit in (
            ("gpu", " gpu-h"),
            ("cpu", " cpu-h"),
            ("ram_gb", " GB-h ram"),
            ("storage_gb", " GB-h disk"),
        )
        if amounts.get(key)
    ]
    return ", ".join(parts) or "0"


def _gpu_model_cells(models: list[dict[str, Any]]) -> str:
    """Per-GPU-model guarantees, limits and weights: "H100 3 used, 2 guaranteed, at most
    4, weight 3, fair share 6"."""
    cells = []
    for m in models:
        parts = [f"{m['model']} {_num(m['used'])} used"]
        if m.get("guarantee"):
            parts.append(f"{_num(m['guarantee'])} guaranteed")
        if m.get("limit") is not None:
            parts.append(f"at most {_num(m['limit'])}")
        if m.get("weight") is not None:
            parts.append(f"weight {m['weight']}")
        if m.get("fair_share") is not None:
            parts.append(f"fair share {_num(m['fair_share'])}")
        cells.append(", ".join(parts))
    return "; ".join(cells) or "-"


def _weight_cell(row: dict[str, Any]) -> str:
    """The team's weight, and the resources weighed apart from it: "2 (gpu 5)"."""
    weights = row.get("weights") or {}
    apart = ", ".join(f"{name} {_num(w)}" for name, w in weights.items() if w != row["weight"])
    return _num(row["weight"]) + (f" ({apart})" if apart else "")


FAIRSHARE_COLUMNS = [
    Column("TEAM", lambda r: ("  " if r["parent_id"] else "") + r["name"]),
    Column("WEIGHT", _weight_cell),
    Column("GUARANTEE", lambda r: _amounts(r["guarantee"]), shrinks=True),
    Column("USED", lambda r: _amounts(r["used"]), shrinks=True),
    Column("BORROWED", lambda r: _amounts(r["borrowed"]), shrinks=True),
    Column("FAIR SHARE", lambda r: _amounts(r["fair_share"]), shrinks=True),
    Column("DRF", lambda r: f"{r['dominant_share']:.3f}"),
    # Time-based fair share (GPUYARD_FAIRSHARE_HALF_LIFE_S): the decayed past usage and
    # Slurm's factor the queue divides the team's ratio by (1 while it is off).
    Column("DECAYED USAGE", lambda r: _hours(r.get("decayed_usage") or {}), wide_only=True),
    Column("FACTOR", lambda r: f"{r.get('fairshare_factor', 1.0):.3f}"),
    Column("DEMAND", lambda r: _amounts(r["demand"]), wide_only=True),
    Column("GPU MODELS", lambda r: _gpu_model_cells(r.get("gpu_models") or []), wide_only=True),
    Column("ID", lambda r: r["team_id"], is_id=True),
]


@teams_app.command("fairshare")
@_reports_api_errors
def fairshare(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Each team's guarantee, usage, borrowing and fair share (departments, then their
    teams, indented), with its decayed past usage and fair-share factor when
    time-based fair share is on."""
    body = ApiClient().get("/api/v1/fairshare")
    print_records(console, body["data"], FAIRSHARE_COLUMNS, output, quiet, id_key="team_id")


@teams_app.command("add")
@_reports_api_errors
def add_member(
    ref: Annotated[str, typer.Argument(help="team name, id or id prefix")],
    user: Annotated[str, typer.Argument(help="the user's e-mail, id or id prefix")],
    team_admin: Annotated[bool, typer.Option(help="as the team's admin")] = False,
) -> None:
    """Add a member (admins; a team admin's request becomes an invitation)."""
    client = ApiClient()
    team = _team(client, ref)
    member = _user(client, user)
    body = {"user_id": member["id"], "is_team_admin": team_admin}
    client.post(f"/api/v1/teams/{team['id']}/members", body)
    console.print(f"{member['email']} added to {team['name']}", markup=False)


@teams_app.command("remove")
@_reports_api_errors
def remove_member(
    ref: Annotated[str, typer.Argument(help="team name, id or id prefix")],
    user: Annotated[str, typer.Argument(help="the user's e-mail, id or id prefix")],
) -> None:
    """Remove a member from a team."""
    client = ApiClient()
    team = _team(client, ref)
    member = _user(client, user)
    client.delete(f"/api/v1/teams/{team['id']}/members/{member['id']}")
    console.print(f"{member['email']} removed from {team['name']}", markup=False)


# ---- tokens ---------------------------------------------------------------------------

TOKEN_COLUMNS = [
    Column("NAME", lambda t: t["name"]),
    Column("PREFIX", lambda t: t["display_prefix"]),
    Column("EXPIRES", lambda t: t["expires_at"] or "never", shrinks=True),
    Column("LAST USED", lambda t: human_age(t["last_used_at"]) if t["last_used_at"] else "never"),
    Column("ID", lambda t: t["id"], is_id=True),
]


@tokens_app.callback()
def tokens() -> None:
    """Your API tokens for scripts and CI."""


@tokens_app.command("ls")
@_reports_api_errors
def list_tokens(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Your tokens (the secret is never shown again)."""
    print_records(console, ApiClient().all_pages("/api/v1/tokens"), TOKEN_COLUMNS, output, quiet)


@tokens_app.command("create")
@reports_api_errors({"name": "NAME", "expires_in_days": "--days"})
def create_token(
    name: Annotated[str, typer.Argument(help="what it is for, e.g. ci")],
    days: Annotated[int | None, typer.Option(help="valid for this many days")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create a token; it is printed once (stdout), keep it."""
    body: dict[str, Any] = {"name": name}
    if days is not None:
        body["expires_in_days"] = days
    made = ApiClient().post("/api/v1/tokens", body)
    print_record(console, made, output, [made["token"]])


@tokens_app.command("rm")
@_reports_api_errors
def revoke_token(ref: Annotated[str, typer.Argument(help="token name, id or id prefix")]) -> None:
    """Revoke a token at once."""
    client = ApiClient()
    token = client.resolve_listed("/api/v1/tokens", ref, "token")
    client.delete(f"/api/v1/tokens/{token['id']}")
    console.print(f"revoked {token['name']}", markup=False)


# ---- invites ---------------------------------------------------------------------------

INVITE_COLUMNS = [
    Column("EMAIL", lambda i: i["email"]),
    Column("ROLE", lambda i: i["role"]),
    Column("STATUS", lambda i: i["status"]),
    Column("EXPIRES", lambda i: i["expires_at"], shrinks=True),
    Column("ID", lambda i: i["id"], is_id=True),
]


@invites_app.callback()
def invites() -> None:
    """Invites: pending, used, expired (admins)."""


@invites_app.command("ls")
@reports_api_errors({"status": "--status"})
def list_invites(
    status: Annotated[str | None, typer.Option(help="pending, used or expired")] = None,
    output: OutputOption = OutputFormat.TABLE,
    quiet: QuietOption = False,
) -> None:
    """Invites, newest first (their codes are never shown again)."""
    data = ApiClient().all_pages("/api/v1/invites", status=status)
    print_records(console, data, INVITE_COLUMNS, output, quiet)


@invites_app.command("rm")
@_reports_api_errors
def revoke_invite(
    ref: Annotated[str, typer.Argument(help="the invited e-mail, invite id or id prefix")],
) -> None:
    """Revoke an invite before it is used."""
    client = ApiClient()
    invite = client.resolve_listed(
        "/api/v1/invites", ref, "pending invite", name_key="email", status="pending"
    )
    client.delete(f"/api/v1/invites/{invite['id']}")
    console.print(f"revoked the invite for {invite['email']}", markup=False)


# ---- audit ----------------------------------------------------------------------------

AUDIT_COLUMNS = [
    Column("AGE", lambda e: human_age(e["at"])),
    Column("ACTOR", lambda e: e["actor_email"] or "-"),
    Column("ACTION", lambda e: e["action"]),
    Column("TARGET", lambda e: f"{e['target_type']} {e['target_id'] or ''}".strip(), shrinks=True),
    Column("IP", lambda e: e["ip"] or "-", drop_rank=1),
    Column("ID", lambda e: str(e["id"])),
]


@reports_api_errors(
    {"since": "--since", "until": "--until", "actor": "--actor", "action": "--action"}
)
def list_audit(
    actor: Annotated[str | None, typer.Option(help="user id or e-mail")] = None,
    action: Annotated[
        str | None, typer.Option(help="e.g. workload.create, or a prefix: workload.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="a target id")] = None,
    since: Annotated[datetime | None, typer.Option(help="from this time (UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(help="before this time (UTC)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="newest N")] = 50,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Who did what to which object, when and from where; newest first (admins)."""
    params = {
        "actor": actor,
        "action": action,
        "target_id": target,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    data = ApiClient().get("/api/v1/audit", limit=limit, **params)["data"]
    print_records(console, data, AUDIT_COLUMNS, output)


def register(app: typer.Typer, audit_app: typer.Typer) -> None:
    """Add the admin groups to the CLI, and `audit ls` beside `audit verify`."""
    server_app.command("add")(_reports_api_errors(add_server))
    server_app.command("cleanup")(_reports_api_errors(server_commands.cleanup))
    ssh_errors = reports_api_errors({**FIELD_FLAGS, **host_ssh_commands.SSH_FLAGS})
    server_app.command("ssh")(ssh_errors(host_ssh_commands.ssh))
    server_app.command("ssh-set")(ssh_errors(host_ssh_commands.ssh_set))
    server_app.command("ssh-show")(ssh_errors(host_ssh_commands.ssh_show))
    server_app.command("ssh-unpin")(ssh_errors(host_ssh_commands.ssh_unpin))
    server_app.command("ssh-forget")(ssh_errors(host_ssh_commands.ssh_forget))
    app.add_typer(server_app, name="server", rich_help_panel="Fleet")
    app.add_typer(users_app, name="users", rich_help_panel="Account")
    app.add_typer(teams_app, name="teams", rich_help_panel="Account")
    app.add_typer(tokens_app, name="tokens", rich_help_panel="Account")
    app.add_typer(invites_app, name="invites", rich_help_panel="Account")
    audit_app.command("ls")(list_audit)
