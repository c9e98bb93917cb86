"""`gpuyard apply -f` and `gpuyard delete -f`: workloads declared in YAML, created or
updated by name, the way kubectl and dstack users work.

A file holds one or more YAML documents (``---`` between them); a directory means every
``*.yaml``/``*.yml`` in it, in name order. Each document is a workload as the API takes it
(``name``, ``image`` or ``image_id``, ``command``, ``env``, ``ports``, ``cpu``, ``ram_gb``,
``gpu``, ``priority``...), and ``name`` is required: it is how apply finds the workload
again. Apply creates what has no live workload of that name, changes in place what the API
can change on a live workload (resources, priority, preemptibility), leaves alone what
already matches, and refuses a change of anything else (image, command, env...) with the
fields named: delete it first, as with an immutable field in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from gpuyard.cli.api_client import ApiClient, ApiError
from gpuyard.cli.client_commands import ACTIVE_STATUSES
from gpuyard.cli.errors import report_api_error

console = Console()
err = Console(stderr=True)

#: What PATCH /workloads/{id} changes on a live workload.
CHANGEABLE_FIELDS = ("cpu", "ram_gb", "storage_gb", "gpu", "gpu_model", "priority", "preemptible")
#: Fields set at submit that a live workload keeps; a different value is refused.
FIXED_FIELDS = (
    "image",
    "command",
    "replicas",
    "gang",
    "cluster_id",
    "team_id",
    "node_selector",
    "duration_s",
    "files_path",
    "gpu_memory_gb",
)
#: Size limits on what is read (a manifest is a few KiB; these stop a wrong path early).
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_DOCUMENTS = 500

FilesOption = Annotated[
    list[Path],
    typer.Option("--filename", "-f", help="a YAML file or a directory of them; repeatable"),
]


@dataclass(frozen=True)
class Declared:
    """One workload document and where it came from (for messages)."""

    spec: dict[str, Any]
    origin: str

    @property
    def name(self) -> str:
        return str(self.spec["name"])


def read_manifests(paths: list[Path]) -> list[Declared]:
    """Every document of ``paths`` (files, or directories of *.yaml/*.yml), validated to be
    mappings with a name; BadParameter naming the file and document otherwise."""
    found: list[Declared] = []
    for path in paths:
        for file in _manifest_files(path):
            if file.stat().st_size > MAX_MANIFEST_BYTES:
                raise typer.BadParameter(f"{file}: larger than 1 MiB", param_hint="-f")
            try:
                documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise typer.BadParameter(f"{file}: not YAML ({exc})", param_hint="-f") from exc
            for number, document in enumerate(documents, start=1):
                if document is None:
                    continue  # an empty document (a trailing ---)
                origin = f"{file} (document {number})"
                if not isinstance(document, dict):
                    raise typer.BadParameter(f"{origin}: not a mapping", param_hint="-f")
                name = document.get("name")
                if not isinstance(name, str) or not name:
                    raise typer.BadParameter(f"{origin}: needs a name", param_hint="-f")
                found.append(Declared(document, origin))
    if len(found) > MAX_DOCUMENTS:
        raise typer.BadParameter(
            f"{len(found)} documents; at most {MAX_DOCUMENTS}", param_hint="-f"
        )
    names = [d.name for d in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise typer.BadParameter(f"declared twice: {', '.join(duplicates)}", param_hint="-f")
    return found


def _manifest_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(
            p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
        )
    elif path.is_file():
        yield path
    else:
        raise typer.BadParameter(f"{path}: no such file or directory", param_hint="-f")


def live_workload(client: ApiClient, name: str) -> dict[str, Any] | None:
    """The caller's live (not finished) workload named ``name``, if there is one."""
    found = client.get("/api/v1/workloads", name=name, status=ACTIVE_STATUSES, limit=2)["data"]
    if len(found) > 1:
        raise ApiError(409, f"{len(found)} live workloads are named {name!r}; use the id")
    return dict(found[0]) if found else None


def _same(declared: Any, current: Any) -> bool:
    if isinstance(declared, int | float) and isinstance(current, int | float):
        return abs(float(declared) - float(current)) < 1e-9
    if declared in (None, {}, []) and current in (None, {}, []):
        return True
    return bool(declared == current)


def plan_change(spec: dict[str, Any], current: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What a PATCH must change, and the fixed fields whose declared value differs."""
    patch = {
        key: spec[key]
        for key in CHANGEABLE_FIELDS
        if key in spec and not _same(spec[key], current.get(key))
    }
    fixed = [key for key in FIXED_FIELDS if key in spec and not _same(spec[key], current.get(key))]
    if "ports" in spec:
        declared_ports = sorted(int(p) for p in spec["ports"] or [])
        if declared_ports != sorted(p["container_port"] for p in current["ports"]):
            fixed.append("ports")
    if "env" in spec and sorted(dict(spec["env"] or {})) != sorted(current["env"]):
        fixed.append("env")
    return patch, fixed


def apply(files: FilesOption) -> None:
    """Create or update workloads declared in YAML, by name."""
    client = ApiClient()
    failed = 0
    for declared in read_manifests(files):
        try:
            _apply_one(client, declared)
        except ApiError as exc:
            err.print(f"{declared.name} ({declared.origin}):", markup=False)
            report_api_error(exc, {})  # a YAML key, not a flag
            failed += 1
    if failed:
        raise typer.Exit(1)


def _apply_one(client: ApiClient, declared: Declared) -> None:
    current = live_workload(client, declared.name)
    if current is None:
        made = client.post("/api/v1/workloads", declared.spec)
        console.print(f"{made['name']} created ({made['id']})", markup=False)
        return
    patch, fixed = plan_change(declared.spec, current)
    if fixed:
        raise ApiError(
            409,
            f"cannot change {', '.join(fixed)} of a live workload; "
            "`gpuyard delete -f` it, then apply again",
        )
    if not patch:
        console.print(f"{declared.name} unchanged", markup=False)
        return
    client.request("PATCH", f"/api/v1/workloads/{current['id']}", json=patch)
    console.print(f"{declared.name} configured ({', '.join(sorted(patch))})", markup=False)


def delete(files: FilesOption) -> None:
    """Delete the workloads declared in YAML, by name."""
    client = ApiClient()
    failed = 0
    for declared in read_manifests(files):
        try:
            current = live_workload(client, declared.name)
            if current is None:
                console.print(f"{declared.name} not found (nothing to delete)", markup=False)
                continue
            client.delete(f"/api/v1/workloads/{current['id']}")
            console.print(f"{declared.name} deleted", markup=False)
        except ApiError as exc:
            err.print(f"{declared.name} ({declared.origin}):", markup=False)
            report_api_error(exc, {})  # a YAML key, not a flag
            failed += 1
    if failed:
        raise typer.Exit(1)
