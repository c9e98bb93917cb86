"""`gpuyard images ...` and `gpuyard registries ...`: the image catalog, the images on a
server (present, pull, build, push, with progress as it streams) and registries."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from gpuyard.cli.api_client import ApiClient, ApiError
from gpuyard.cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    QuietOption,
    human_age,
    number,
    print_records,
)

images_app = typer.Typer(help="The image catalog and the images on servers.", no_args_is_help=True)
registries_app = typer.Typer(help="Container registries (admins).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
#: Longest build context the CLI packs (the server has its own, usually smaller, limit).
MAX_CONTEXT_BYTES = 2 * 1024 * 1024 * 1024


IMAGE_COLUMNS = [
    Column("NAME", lambda i: i["name"]),
    Column("TYPE", lambda i: i["type"]),
    Column("REFERENCE", lambda i: i["reference"], shrinks=True),
    Column("PORT", lambda i: str(i["default_port"] or "-"), drop_rank=2),
    Column(
        "DEFAULTS",
        lambda i: f"{number(i['cpu'])} cpu, {number(i['ram_gb'])} GB, {number(i['gpu'])} gpu",
        drop_rank=1,
    ),
    Column("ID", lambda i: i["id"], is_id=True),
]
PRESENT_COLUMNS = [
    Column("TAGS", lambda i: ", ".join(i["tags"]) or "<untagged>", shrinks=True),
    Column("SIZE MB", lambda i: f"{i['size_bytes'] / 1e6:.1f}"),
    Column("CREATED", lambda i: human_age(i["created_at"]) if i["created_at"] else "-"),
    Column("ID", lambda i: i["id"], is_id=True),
]
REGISTRY_COLUMNS = [
    Column("NAME", lambda r: r["name"]),
    Column("URL", lambda r: r["url"], shrinks=True),
    Column("USER", lambda r: r["username"] or "-"),
    Column("PASSWORD", lambda r: "set" if r["has_password"] else "-"),
    Column("INSECURE", lambda r: "yes" if r["insecure"] else "no", drop_rank=1),
    Column("ID", lambda r: r["id"], is_id=True),
]


def _image_id(client: ApiClient, ref: str) -> str:
    """A catalog image by name, id or unique id prefix."""
    return str(client.resolve_listed("/api/v1/images", ref, "image")["id"])


def _server_id(client: ApiClient, ref: str) -> str:
    """A server by name, id or unique id prefix."""
    return str(client.resolve_server(ref)["id"])


def _fields(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


@images_app.command("list")
def list_images(
    type_: Annotated[str | None, typer.Option("--type", help="only this image type")] = None,
    output: OutputOption = OutputFormat.TABLE,
    quiet: QuietOption = False,
) -> None:
    """The catalog."""
    data = ApiClient().all_pages("/api/v1/images", type=type_)
    print_records(console, data, IMAGE_COLUMNS, output, quiet)


@images_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="image id or name")]) -> None:
    """One catalog entry, every field."""
    client = ApiClient()
    image = client.get(f"/api/v1/images/{_image_id(client, ref)}")
    console.print_json(json.dumps(image))


@images_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="catalog name, e.g. web-nginx")],
    reference: Annotated[str, typer.Option(help="image reference, e.g. nginx:1.27")],
    type_: Annotated[str, typer.Option("--type", help="nginx, python, ubuntu-ssh...")],
    port: Annotated[int | None, typer.Option(help="default container port")] = None,
    cpu: Annotated[float, typer.Option(help="default CPU cores")] = 1,
    ram: Annotated[float, typer.Option(help="default RAM in GB")] = 1,
    storage: Annotated[float, typer.Option(help="default storage in GB")] = 0,
    gpu: Annotated[float, typer.Option(help="default GPUs")] = 0,
    description: Annotated[str, typer.Option()] = "",
    files_path: Annotated[
        str | None, typer.Option(help="where a workload's files are mounted in it")
    ] = None,
) -> None:
    """Add an image to the catalog (operators and admins)."""
    body = _fields(
        name=name,
        reference=reference,
        type=type_,
        default_port=port,
        cpu=cpu,
        ram_gb=ram,
        storage_gb=storage,
        gpu=gpu,
        description=description,
        files_path=files_path,
    )
    image = ApiClient().post("/api/v1/images", body)
    console.print(f"{image['name']} {image['id']} created")


@images_app.command("update")
def update(
    ref: Annotated[str, typer.Argument(help="image id or name")],
    name: Annotated[str | None, typer.Option()] = None,
    reference: Annotated[str | None, typer.Option()] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    port: Annotated[int | None, typer.Option()] = None,
    cpu: Annotated[float | None, typer.Option()] = None,
    ram: Annotated[float | None, typer.Option()] = None,
    storage: Annotated[float | None, typer.Option()] = None,
    gpu: Annotated[float | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    files_path: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change the given fields of a catalog entry."""
    client = ApiClient()
    body = _fields(
        name=name,
        reference=reference,
        type=type_,
        default_port=port,
        cpu=cpu,
        ram_gb=ram,
        storage_gb=storage,
        gpu=gpu,
        description=description,
        files_path=files_path,
    )
    image = client.request("PATCH", f"/api/v1/images/{_image_id(client, ref)}", json=body).json()
    console.print(f"{image['name']} {image['id']} updated")


@images_app.command("delete")
def delete(ref: Annotated[str, typer.Argument(help="image id or name")]) -> None:
    """Remove a catalog entry (images on servers stay)."""
    client = ApiClient()
    client.delete(f"/api/v1/images/{_image_id(client, ref)}")
    console.print(f"{ref} deleted")


@images_app.command("present")
def present(
    server: Annotated[str, typer.Argument(help="server name, id or id prefix")],
    output: OutputOption = OutputFormat.TABLE,
    quiet: QuietOption = False,
) -> None:
    """The images present on a docker server."""
    client = ApiClient()
    data = client.get(f"/api/v1/servers/{_server_id(client, server)}/images")["data"]
    print_records(console, data, PRESENT_COLUMNS, output, quiet)


@images_app.command("remove")
def remove(
    server: Annotated[str, typer.Argument(help="server id or name")],
    reference: Annotated[str, typer.Argument(help="the image (tag) to remove")],
    force: Annotated[bool, typer.Option(help="also from under stopped containers")] = False,
) -> None:
    """Remove an image (a tag of it) from a server."""
    client = ApiClient()
    params = {"reference": reference, "force": force}
    client.request("DELETE", f"/api/v1/servers/{_server_id(client, server)}/images", params=params)
    console.print(f"{reference} removed")


def _follow(client: ApiClient, path: str, **kwargs: Any) -> None:
    """Print a streamed operation's lines as they come; exit 1 when it ends in error."""
    last: dict[str, Any] = {}
    with client.stream("POST", path, **kwargs) as response:
        for raw in response.iter_lines():
            if not raw:
                continue
            last = json.loads(raw)
            if last["kind"] == "log":
                console.print(last["message"], markup=False, highlight=False)
            elif last["kind"] == "status":
                layer = f"{last['layer']}: " if last.get("layer") else ""
                amount = f" {last['current']}/{last['total']}" if last.get("total") else ""
                console.print(f"{layer}{last['message']}{amount}", markup=False, highlight=False)
    if last.get("kind") != "done":
        err.print(f"[red]error[/] {last.get('message', 'the stream ended early')}")
        raise typer.Exit(1)
    console.print(f"[green]done[/] {last['message']}")


@images_app.command("pull")
def pull(
    server: Annotated[str, typer.Argument(help="server id or name")],
    reference: Annotated[str, typer.Argument(help="image reference")],
    registry: Annotated[str | None, typer.Option(help="registry id (credentials)")] = None,
) -> None:
    """Pull an image onto a server, showing its progress."""
    client = ApiClient()
    body = _fields(reference=reference, registry_id=registry)
    _follow(client, f"/api/v1/servers/{_server_id(client, server)}/images/pull", json=body)


def context_tar(directory: Path) -> bytes:
    """A tar of a build context directory (symbolic links kept as links)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(str(path), arcname=str(path.relative_to(directory)), recursive=False)
            if buffer.tell() > MAX_CONTEXT_BYTES:
                raise ApiError(0, f"the build context is over {MAX_CONTEXT_BYTES} bytes")
    return buffer.getvalue()


@images_app.command("build")
def build(
    server: Annotated[str, typer.Argument(help="server id or name")],
    context: Annotated[
        Path, typer.Argument(help="build context directory", exists=True, file_okay=False)
    ],
    tag: Annotated[str, typer.Option(help="name of the built image, e.g. team/app:1")],
    dockerfile: Annotated[str, typer.Option(help="path in the context")] = "Dockerfile",
) -> None:
    """Build an image on a server from a local context directory, showing its log."""
    client = ApiClient()
    _follow(
        client,
        f"/api/v1/servers/{_server_id(client, server)}/images/build",
        params={"tag": tag, "dockerfile": dockerfile},
        content=context_tar(context),
        headers={"Content-Type": "application/x-tar"},
    )


@images_app.command("push")
def push(
    server: Annotated[str, typer.Argument(help="server id or name")],
    source: Annotated[str, typer.Argument(help="the image on the server")],
    registry: Annotated[str, typer.Option(help="registry id or name")],
    target: Annotated[str | None, typer.Option(help="repository[:tag] in the registry")] = None,
) -> None:
    """Push one of a server's images to a registry, showing its progress."""
    client = ApiClient()
    registry_id = next(
        (
            r["id"]
            for r in client.get("/api/v1/registries", limit=1000)["data"]
            if registry in (r["id"], r["name"])
        ),
        registry,
    )
    body = _fields(source=source, registry_id=registry_id, target=target)
    _follow(client, f"/api/v1/servers/{_server_id(client, server)}/images/push", json=body)


@registries_app.command("list")
def list_registries(output: OutputOption = OutputFormat.TABLE, quiet: QuietOption = False) -> None:
    """Registries (admins and operators; passwords are never shown)."""
    data = ApiClient().all_pages("/api/v1/registries")
    print_records(console, data, REGISTRY_COLUMNS, output, quiet)


@registries_app.command("create")
def create_registry(
    name: Annotated[str, typer.Argument()],
    url: Annotated[str, typer.Option(help="host[:port] or http(s)://host[:port]")],
    username: Annotated[str | None, typer.Option()] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="GPUYARD_REGISTRY_PASSWORD", help="stored encrypted, never shown"),
    ] = None,
    insecure: Annotated[bool | None, typer.Option("--insecure/--secure")] = None,
) -> None:
    """Add a registry (admins)."""
    body = _fields(name=name, url=url, username=username, password=password, insecure=insecure)
    registry = ApiClient().post("/api/v1/registries", body)
    console.print(f"{registry['name']} {registry['id']} at {registry['url']}")


@registries_app.command("delete")
def delete_registry(ref: Annotated[str, typer.Argument(help="registry id")]) -> None:
    """Forget a registry and its credentials (admins)."""
    ApiClient().delete(f"/api/v1/registries/{ref}")
    console.print(f"{ref} deleted")


def register(app: typer.Typer, reports_errors: Callable[[Any], Any]) -> None:
    """Add the two command groups, each command reporting API errors as the others do."""
    for group in (images_app, registries_app):
        for command in group.registered_commands:
            command.callback = reports_errors(command.callback)
    app.add_typer(images_app, name="images", rich_help_panel="Fleet")
    app.add_typer(registries_app, name="registries", rich_help_panel="Fleet")
