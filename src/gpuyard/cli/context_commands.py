"""`gpuyard context ...`: the saved logins (one per gpuyard server) and which is current."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiError
from gpuyard.cli.credentials import CredentialStore, CredentialsUnreadable
from gpuyard.cli.errors import _reports_api_errors
from gpuyard.cli.output import Column, OutputFormat, OutputOption, print_records

context_app = typer.Typer(
    help="Saved logins, one per gpuyard server.",
    no_args_is_help=True,
)
console = Console()

CONTEXT_COLUMNS = [
    Column("CURRENT", lambda c: "*" if c["current"] else ""),
    Column("NAME", lambda c: c["name"]),
    Column("URL", lambda c: c["url"], shrinks=True),
    Column("LOGGED IN", lambda c: "yes" if c["logged_in"] else "no"),
]


@context_app.callback()
def context() -> None:
    """Saved logins, one per gpuyard server (`gpuyard login --context NAME` adds one)."""


def _store() -> CredentialStore:
    try:
        return CredentialStore.load()
    except CredentialsUnreadable as exc:
        raise ApiError(400, str(exc)) from exc


@context_app.command("ls")
@_reports_api_errors
def list_contexts(output: OutputOption = OutputFormat.TABLE) -> None:
    """Every saved context; the current one is starred. Tokens are never shown."""
    store = _store()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "url": entry["url"],
            "logged_in": bool(entry.get("token")),
            "current": name == store.current,
        }
        for name, entry in sorted(store.contexts.items())
    ]
    print_records(console, rows, CONTEXT_COLUMNS, output, id_key="name")


@context_app.command("use")
@_reports_api_errors
def use_context(name: Annotated[str, typer.Argument(help="a saved context")]) -> None:
    """Make ``name`` the current context for later commands."""
    store = _store()
    if name not in store.contexts:
        known = ", ".join(sorted(store.contexts)) or "none yet: gpuyard login --context NAME"
        raise ApiError(404, f"no context {name!r} (saved: {known})")
    store.current = name
    store.save()
    console.print(f"now using {name} ({store.contexts[name]['url']})", markup=False)


@context_app.command("rm")
@_reports_api_errors
def remove_context(name: Annotated[str, typer.Argument(help="a saved context")]) -> None:
    """Forget a saved context and its token (the session stays valid until it expires;
    `gpuyard logout` ends it)."""
    store = _store()
    if store.contexts.pop(name, None) is None:
        raise ApiError(404, f"no context {name!r}")
    if store.current == name:
        store.current = None
    store.save()
    console.print(f"forgot {name}", markup=False)
