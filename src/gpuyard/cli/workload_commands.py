"""Workload commands beyond launch and list: resize, files (ls, cp to and from)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiClient, ApiError
from gpuyard.cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    human_age,
    print_record,
    print_records,
)

console = Console()

FILE_COLUMNS = [
    Column("TYPE", lambda f: f["type"]),
    Column("SIZE", lambda f: str(f["size"])),
    Column("MODIFIED", lambda f: human_age(datetime.fromtimestamp(f["modified_at"], UTC))),
    Column("PATH", lambda f: f["path"], shrinks=True),
]


def resize(
    ref: Annotated[str, typer.Argument(help="workload id, id prefix or name")],
    cpu: Annotated[float | None, typer.Option(help="CPU cores")] = None,
    ram: Annotated[float | None, typer.Option(help="RAM in GB")] = None,
    storage: Annotated[float | None, typer.Option(help="storage in GB")] = None,
    gpu: Annotated[float | None, typer.Option(help="whole GPUs, or a share of one")] = None,
    gpu_model: Annotated[str | None, typer.Option(help="e.g. H100")] = None,
    priority: Annotated[int | None, typer.Option(help="1 (lowest) to 5 (highest)")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Change a workload's resources or priority."""
    changes = {
        key: value
        for key, value in (
            ("cpu", cpu),
            ("ram_gb", ram),
            ("storage_gb", storage),
            ("gpu", gpu),
            ("gpu_model", gpu_model),
            ("priority", priority),
        )
        if value is not None
    }
    if not changes:
        raise typer.BadParameter(
            "give at least one of --cpu --ram --storage --gpu --gpu-model --priority"
        )
    client = ApiClient()
    workload = client.resolve_workload(ref)
    changed = client.request("PATCH", f"/api/v1/workloads/{workload['id']}", json=changes).json()
    print_record(
        console,
        changed,
        output,
        [f"{changed['name']} {changed['status']}: {changed['reason'] or ''}"],
    )


def files(
    target: Annotated[
        str, typer.Argument(help="WORKLOAD[:PATH] (PATH inside its files directory)")
    ],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List a workload's files directory (or a folder in it)."""
    client = ApiClient()
    workload, path = _split_target(client, target)
    listing = _listing(client, workload["id"], path)
    print_records(console, listing["data"], FILE_COLUMNS, output, id_key="path")


def cp(
    source: Annotated[str, typer.Argument(help="LOCAL_PATH or WORKLOAD:PATH")],
    destination: Annotated[str, typer.Argument(help="WORKLOAD:PATH or LOCAL_PATH")],
) -> None:
    """Copy files and folders to or from a workload."""
    client = ApiClient()
    if _is_remote(source) and not _is_remote(destination):
        workload, path = _split_target(client, source)
        count = _download(client, workload["id"], path, Path(destination))
    elif _is_remote(destination) and not _is_remote(source):
        workload, path = _split_target(client, destination)
        count = _upload(client, workload["id"], Path(source), path)
    else:
        raise typer.BadParameter("one side must be WORKLOAD:PATH and the other a local path")
    console.print(f"copied {count} file{'s' if count != 1 else ''}", markup=False)


def _is_remote(text: str) -> bool:
    # "./a:b" or "/x/y:z" are local paths with a colon; a workload reference has no slash.
    head, sep, _ = text.partition(":")
    return bool(sep) and bool(head) and "/" not in head


def _split_target(client: ApiClient, target: str) -> tuple[dict[str, Any], str]:
    ref, _, path = target.partition(":")
    return client.resolve_workload(ref), path.strip("/")


def _listing(client: ApiClient, workload_id: str, path: str) -> dict[str, Any]:
    files_url = f"/api/v1/workloads/{workload_id}/files"
    return dict(client.request("GET", files_url, params={"path": path}).json())


def _remote(workload_id: str, path: str) -> str:
    return f"/api/v1/workloads/{workload_id}/files/{quote(path)}"


def _upload(client: ApiClient, workload_id: str, local: Path, remote: str) -> int:
    if not local.exists():
        raise ApiError(404, f"no local file or folder {str(local)!r}")
    if local.is_file():
        into_folder = remote == "" or _remote_is_dir(client, workload_id, remote)
        target = str(PurePosixPath(remote) / local.name) if into_folder else remote
        with local.open("rb") as handle:
            client.request("PUT", _remote(workload_id, target.lstrip("/")), content=handle)
        return 1
    count = 0
    base = PurePosixPath(remote) / local.name  # as `cp -r`: the folder itself, by name
    for item in sorted(local.rglob("*")):
        if item.is_file() and not item.is_symlink():
            inside = str(base / item.relative_to(local).as_posix()).lstrip("/")
            with item.open("rb") as handle:
                client.request("PUT", _remote(workload_id, inside), content=handle)
            count += 1
    return count


def _remote_is_dir(client: ApiClient, workload_id: str, remote: str) -> bool:
    try:
        _listing(client, workload_id, remote)
    except ApiError as exc:
        if exc.status in (400, 404, 409, 422):
            return False
        raise
    return True


def _download(client: ApiClient, workload_id: str, remote: str, local: Path) -> int:
    if remote and not _remote_is_dir(client, workload_id, remote):
        target = local / PurePosixPath(remote).name if local.is_dir() else local
        target.write_bytes(client.request("GET", _remote(workload_id, remote)).content)
        return 1
    folder = local / PurePosixPath(remote).name if remote and local.is_dir() else local
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for entry in _listing(client, workload_id, remote)["data"]:
        name = PurePosixPath(entry["path"]).name
        if name in ("", ".", ".."):
            continue  # never write outside the local folder, whatever the listing says
        if entry["type"] == "file":
            (folder / name).write_bytes(
                client.request("GET", _remote(workload_id, entry["path"])).content
            )
            count += 1
        elif entry["type"] == "dir":
            count += _download(client, workload_id, entry["path"], folder / name)
    return count
