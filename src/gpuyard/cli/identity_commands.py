"""Client commands for accounts: whoami, logout, invite, register."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiClient
from gpuyard.cli.credentials import DEFAULT_URL, forget_token, load_credentials

console = Console()


def whoami() -> None:
    """Show the logged-in account, its role, teams and priority cap."""
    me = ApiClient().get("/api/v1/auth/me")
    teams = ", ".join(_membership(t) for t in me["teams"])
    console.print(f"{me['email']} ({me['role']}){'  teams: ' + teams if teams else ''}")
    console.print(f"priority: up to {me['max_priority']}")


def _membership(team: dict[str, object]) -> str:
    notes = ["team admin"] if team["is_team_admin"] else []
    if team.get("max_priority") is not None:
        notes.append(f"priority up to {team['max_priority']}")
    joined = ", ".join(notes)
    return f"{team['team_name']} ({joined})" if notes else str(team["team_name"])


def logout() -> None:
    """End this login session (the saved token stops working)."""
    client = ApiClient()
    client.request("POST", "/api/v1/auth/logout")
    forget_token(client.context)
    console.print("logged out")


def invite(
    email: Annotated[str, typer.Argument(help="who may register")],
    role: Annotated[str, typer.Option(help="admin, operator or user")] = "user",
    team: Annotated[str | None, typer.Option(help="team id to join")] = None,
    hours: Annotated[float | None, typer.Option(help="valid for (default 72)")] = None,
) -> None:
    """Create a single-use invite code (admins, team admins)."""
    body: dict[str, object] = {"email": email, "role": role}
    if team is not None:
        body["team_id"] = team
    if hours is not None:
        body["expires_in_hours"] = hours
    created = ApiClient().post("/api/v1/invites", body)
    console.print(f"invite code for {created['email']} ({created['role']}): {created['code']}")
    console.print(f"valid until {created['expires_at']}; shown once")


def register(
    email: Annotated[str, typer.Argument(help="the invited email")],
    code: Annotated[str, typer.Option(help="the invite code")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    username: Annotated[str | None, typer.Option()] = None,
    url: Annotated[str | None, typer.Option(help=f"server URL (default {DEFAULT_URL})")] = None,
) -> None:
    """Create your account with an invite code, then `gpuyard login`."""
    body: dict[str, object] = {"email": email, "password": password, "invite_code": code}
    if username is not None:
        body["username"] = username
    user = ApiClient(url=url or load_credentials().url, token="").post(
        "/api/v1/auth/register", body
    )
    console.print(f"registered {user['email']} ({user['role']}); now run: gpuyard login {email}")
