"""The images on one server, through the runtime of its cluster kind: list what is
present, pull with progress, build from an uploaded context, push to a registry.

Each call reads what it needs (the server, a registry's credentials) in short
transactions, then asks the runtime outside any transaction. A pull, build or push is a
context manager yielding its progress: the runtime's refusal before the operation begins
raises on entering (so it is the response's status); once it runs, every line is passed
on, a failure becomes a last ERROR line, and a stream that stops early says so. The audit
event is written once the runtime has accepted the operation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.image_records import (
    HostImage,
    ImageProgress,
    ProgressKind,
    RegistryCredentials,
)
from gpuyard.domain.image_references import ImageReference, parse_reference, with_tag
from gpuyard.runtimes.base import Runtime, RuntimeFailure
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.images.registries import registry_credentials
from gpuyard.services.workloads.container_io import relay
from gpuyard.store.fleet import cluster_kind, server_row

#: The characters of a Dockerfile's path inside the build context (which must also be
#: relative and hold no '..': ``check_dockerfile``).
DOCKERFILE_PATTERN = r"^[A-Za-z0-9._/-]{1,255}$"
_DOCKERFILE = re.compile(DOCKERFILE_PATTERN)


@dataclass(frozen=True)
class HostServer:
    """A server as the image operations need it."""

    id: str
    name: str
    kind: str


def _server(ctx: ServiceContext, server_id: str) -> HostServer:
    with ctx.db.read() as session:
        row = server_row(session, server_id)
        kind = cluster_kind(session, row.cluster_id) if row is not None else None
        if row is None or kind is None:
            raise NotFound.for_object("server", server_id)
        return HostServer(row.id, row.name, kind)


@contextmanager
def _runtime_errors(server: HostServer) -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise Conflict(f"server {server.name} has no agent") from exc
    except RuntimeFailure as exc:
        problem = relay(exc)
        # The agent names the credentials it was sent ("auth"); the caller chose them by
        # the registry.
        problem.errors = [
            FieldError("registry_id", e.message) if e.field == "auth" else e for e in problem.errors
        ]
        raise problem from exc


def _runtime(ctx: ServiceContext, server: HostServer) -> Runtime:
    return ctx.runtimes.for_kind(server.kind)


def list_host_images(ctx: ServiceContext, server_id: str) -> list[HostImage]:
    """The images present on the server (409 for a server that runs no containers)."""
    server = _server(ctx, server_id)
    with _runtime_errors(server):
        return _runtime(ctx, server).images(server.name)


def remove_host_image(
    ctx: ServiceContext, caller: Caller, server_id: str, reference: str, force: bool = False
) -> None:
    """Remove an image (a tag of it) from the server; 409 while a container uses it
    (``force``: unless that container is stopped), 404 when the server has no such image."""
    parsed = with_tag(parse_reference(reference))
    server = _server(ctx, server_id)
    with _runtime_errors(server):
        _runtime(ctx, server).remove_image(server.name, str(parsed), force=force)
    now = ctx.now()
    details = {"server": server.name, "reference": str(parsed), "force": force}
    with ctx.db.write() as session:
        record_audit(
            session, AuditActor.of(caller), "image.remove", "server", server.id, now, details
        )


def _to_the_end(progress: Iterator[ImageProgress]) -> Iterator[ImageProgress]:
    """Every line, ending with exactly one DONE or ERROR whatever happens."""
    try:
        for line in progress:
            yield line
            if line.kind in (ProgressKind.DONE, ProgressKind.ERROR):
                return
    except RuntimeFailure as exc:
        yield ImageProgress(ProgressKind.ERROR, exc.detail)
        return
    yield ImageProgress(ProgressKind.ERROR, "the server's stream ended before the operation did")


@contextmanager
def _operation(
    ctx: ServiceContext,
    caller: Caller,
    server: HostServer,
    opening: Callable[[Runtime], AbstractContextManager[Iterator[ImageProgress]]],
    action: str,
    details: dict[str, Any],
) -> Iterator[Iterator[ImageProgress]]:
    with ExitStack() as stack:
        with _runtime_errors(server):
            progress = stack.enter_context(opening(_runtime(ctx, server)))
        now = ctx.now()
        with ctx.db.write() as session:
            record_audit(
                session,
                AuditActor.of(caller),
                action,
                "server",
                server.id,
                now,
                {"server": server.name, **details},
            )
        yield _to_the_end(progress)


def _in_registry(reference: ImageReference, address: str, field: str) -> ImageReference:
    """``reference`` in the registry at ``address``: prefixed with it when it names no
    registry; 422 on ``field`` when it names another."""
    domain = reference.domain
    if domain is None:
        return ImageReference(f"{address}/{reference.repository}", reference.tag, reference.digest)
    if domain != address:
        raise InvalidInput.for_field(field, f"names registry {domain!r}, not {address!r}")
    return reference


def pull_image(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    reference: str,
    registry_id: str | None = None,
) -> AbstractContextManager[Iterator[ImageProgress]]:
    """Pull ``reference`` onto the server. With ``registry_id`` the reference is read in
    that registry (prefixed with its address when it names none) with its credentials;
    without, a registry configured at the reference's address lends its credentials."""
    parsed = with_tag(parse_reference(reference))
    found = registry_credentials(ctx, registry_id, parsed.domain)
    credentials: RegistryCredentials | None = None
    if found is not None:
        registry, credentials = found
        parsed = _in_registry(parsed, registry.address, "reference")
    server = _server(ctx, server_id)

    def opening(runtime: Runtime) -> AbstractContextManager[Iterator[ImageProgress]]:
        return runtime.pull_image(server.name, str(parsed), credentials)

    details = {"reference": str(parsed), "registry_id": found[0].id if found else None}
    return _operation(ctx, caller, server, opening, "image.pull", details)


def check_dockerfile(path: str) -> str:
    """The Dockerfile's path in the context: relative, without '..'."""
    if not _DOCKERFILE.match(path) or path.startswith("/") or ".." in path.split("/"):
        raise InvalidInput.for_field(
            "dockerfile", "must be a relative path in the context (letters, digits, ._/-; no ..)"
        )
    return path


def check_build(tag: str, dockerfile: str) -> str:
    """The tag a build names (with ``latest`` when it gives none), after checking it and
    the Dockerfile's path: callers check before they read the context."""
    check_dockerfile(dockerfile)
    return str(with_tag(parse_reference(tag, "tag")))


def build_image(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    tag: str,
    dockerfile: str,
    context: bytes | Iterable[bytes],
    size: int | None,
) -> AbstractContextManager[Iterator[ImageProgress]]:
    """Build ``tag`` on the server from a tar of the build context."""
    built = check_build(tag, dockerfile)
    server = _server(ctx, server_id)

    def opening(runtime: Runtime) -> AbstractContextManager[Iterator[ImageProgress]]:
        return runtime.build_image(server.name, built, context, size, dockerfile)

    details = {"tag": built, "dockerfile": dockerfile, "context_bytes": size}
    return _operation(ctx, caller, server, opening, "image.build", details)


def push_image(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    source: str,
    registry_id: str,
    target: str | None = None,
) -> AbstractContextManager[Iterator[ImageProgress]]:
    """Push the server's image ``source`` to a registry, as ``target`` (default: the
    source's repository and tag, in that registry)."""
    parsed_source = with_tag(parse_reference(source, "source"))
    if parsed_source.digest and not parsed_source.tag:
        raise InvalidInput.for_field("source", "name the image by tag to push it")
    found = registry_credentials(ctx, registry_id, None)
    if found is None:  # pragma: no cover - registry_credentials refuses a missing id
        raise InvalidInput.for_field("registry_id", "required")
    registry, credentials = found
    wanted = (
        with_tag(parse_reference(target, "target"))
        if target is not None
        else ImageReference(parsed_source.path, parsed_source.tag, None)
    )
    if wanted.digest:
        raise InvalidInput.for_field("target", "a push target is a tag, not a digest")
    destination = _in_registry(wanted, registry.address, "target")
    server = _server(ctx, server_id)

    def opening(runtime: Runtime) -> AbstractContextManager[Iterator[ImageProgress]]:
        return runtime.push_image(server.name, str(parsed_source), str(destination), credentials)

    details = {"source": str(parsed_source), "target": str(destination), "registry_id": registry.id}
    return _operation(ctx, caller, server, opening, "image.push", details)
