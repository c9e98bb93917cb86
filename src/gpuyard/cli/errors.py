"""How the CLI reports a refusal: the flag the user typed instead of the API's field, a
hint instead of an HTTP recipe, and an exit code that says which kind of failure it was."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from gpuyard.cli.api_client import ApiError

err = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


#: API body fields and the flags or arguments that set them, so an error names what the user
#: typed (``--ram``), not the API's field (``ram_gb``).
FIELD_FLAGS = {
    "image": "IMAGE",
    "command": "COMMAND",
    "name": "--name",
    "cpu": "--cpu",
    "ram_gb": "--ram",
    "storage_gb": "--storage",
    "gpu": "--gpu",
    "gpu_model": "--gpu-model",
    "gpu_memory_gb": "--gpu-memory",
    "priority": "--priority",
    "cluster_id": "--cluster",
    "team_id": "--team",
    "replicas": "--replicas",
    "duration_s": "--duration",
    "files_path": "--files-path",
    "env": "--env",
    "ports": "--port",
    "agent_url": "--agent-url",
    "agent_token": "--agent-token",
    "host_ports": "--host-ports",
    "max_lifetime_s": "--max-lifetime",
    "kind": "--kind",
    "kubeconfig": "--kubeconfig",
}
#: Exit codes (README "CLI"): 1 refused by the server, 2 bad usage (typer's), 3 gpuyard
#: cannot be reached, 4 not logged in or the session ended.
EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_NOT_LOGGED_IN = 1, 3, 4


def flag_for(field: str, flags: Mapping[str, str] = FIELD_FLAGS) -> str:
    """The flag that sets an API field (``ram_gb`` -> ``--ram``; ``ports.0`` -> ``--port``;
    a nested field named in ``flags`` in full, ``hierarchy.weight`` -> ``--weight``, and a
    key of one, ``hierarchy.gpu_model_limits.H100`` -> ``--gpu-model-limit H100``)."""
    if field in flags:
        return flags[field]
    # A key below a mapped object field (``hierarchy.gpu_model_limits.H100``): the flag
    # and the key, ``--gpu-model-limit H100``.
    parent, _, key = field.rpartition(".")
    if parent and parent in flags and "." in parent:
        return f"{flags[parent]} {key}"
    head, _, rest = field.partition(".")
    flag = flags.get(head)
    if flag is None:
        return field
    return f"{flag} (#{int(rest) + 1})" if rest.isdigit() else flag


def report_api_error(exc: ApiError, flags: Mapping[str, str] = FIELD_FLAGS) -> int:
    """Print a refusal the way a user reads it; the exit code that says which kind."""
    fields = [(str(e.get("field", "")), str(e.get("message", ""))) for e in exc.errors]
    if exc.detail != "; ".join(f"{field}: {message}" for field, message in fields):
        # says more than the field list
        err.print(f"[red]error[/] {escape(exc.detail)}", soft_wrap=True)
    for field, message in fields:
        line = f"[red]error[/] {escape(flag_for(field, flags))}: {escape(message)}"
        err.print(line, soft_wrap=True)
    if exc.status == 0:
        return EXIT_UNREACHABLE
    return EXIT_NOT_LOGGED_IN if exc.status == 401 else EXIT_REFUSED


def reports_api_errors(
    flags: Mapping[str, str] = FIELD_FLAGS,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A command decorator: an ApiError is printed naming ``flags`` and ends the command
    with its exit code."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except ApiError as exc:
                raise typer.Exit(report_api_error(exc, flags)) from None

        return wrapper

    return decorate


_reports_api_errors = reports_api_errors()
