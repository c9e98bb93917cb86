"""`gpuyard audit verify`: check the audit log's hash chain straight from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@audit_app.callback()
def audit() -> None:
    """The tamper-evident audit log."""


@audit_app.command("verify")
def verify(
    data_dir: Annotated[Path | None, typer.Option(help="where the SQLite database lives")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL instead of the embedded SQLite")
    ] = None,
) -> None:
    """Walk the audit chain; exit 1 and name the first event that does not verify."""
    from gpuyard.services.identity.audit import verify_audit_log
    from gpuyard.settings import Settings
    from gpuyard.store.database import Database

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.database_url is None and not settings.sqlite_path.exists():
        err.print(f"[red]error[/] no gpuyard database at {settings.sqlite_path}")
        raise typer.Exit(2)
    db = Database(settings.effective_database_url)
    try:
        report = verify_audit_log(db)
    finally:
        db.dispose()
    if report.intact:
        console.print(f"audit chain intact: {report.checked} events verified")
        return
    err.print(
        f"[red]audit chain broken[/] at event {report.first_bad_id}: {report.problem} "
        f"({report.checked} events before it verified)"
    )
    raise typer.Exit(1)
