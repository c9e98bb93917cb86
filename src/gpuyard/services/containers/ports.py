"""Host ports for published container ports, unique per server.

A port comes from the server's own range when it has one, else from the range of the
image's type (nginx, apache, python, node, ssh; "*" for the rest). The lowest free port is
taken with an INSERT that the UNIQUE(server_id, host_port) constraint guards: a concurrent
decider that took it first makes the INSERT fail inside a savepoint, and the next port is
tried. Called in the admission's transaction, so ports and reservation commit together.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from gpuyard.store import containers as container_store
from gpuyard.store.reservations import ReservationConflict

PortRange = tuple[int, int]
#: Attempts per port before giving up on a range that others keep winning.
_MAX_RACES = 16


def image_kind(image: str) -> str:
    """The words of an image's repository name ("library/nginx:1.27" -> "nginx")."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0].lower()


def port_range_for(
    image: str, ranges: dict[str, PortRange], server_range: PortRange | None
) -> PortRange:
    """The range a workload's host ports come from on one server."""
    if server_range is not None:
        return server_range
    words = set(re.split(r"[^a-z0-9]+", image_kind(image)))
    for kind, port_range in ranges.items():
        if kind != "*" and kind in words:
            return port_range
    return ranges["*"]


class PortsExhausted(ReservationConflict):
    """The server's host port range is full: not a race, retrying at once will not help."""


def allocate_ports(
    session: Session,
    *,
    server_id: str,
    allocation_id: str,
    workload_id: str,
    container_ports: list[int],
    port_range: PortRange,
) -> dict[int, int]:
    """Take one host port per container port; returns {container_port: host_port}.

    Raises ReservationConflict when the range has no free port left."""
    first, last = port_range
    taken = container_store.taken_host_ports(session, server_id, first, last)
    candidates = (p for p in range(first, last + 1) if p not in taken)
    chosen: dict[int, int] = {}
    for container_port in container_ports:
        for _race in range(_MAX_RACES):
            host_port = next(candidates, None)
            if host_port is None:
                raise PortsExhausted(f"no free host port in {first}-{last}")
            taken_now = container_store.take_host_port(
                session,
                server_id=server_id,
                host_port=host_port,
                allocation_id=allocation_id,
                workload_id=workload_id,
                container_port=container_port,
            )
            if not taken_now:
                continue  # someone else took it since we looked: try the next one
            chosen[container_port] = host_port
            break
        else:
            raise ReservationConflict(f"host ports {first}-{last} are contended; retry")
    return chosen
