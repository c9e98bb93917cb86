"""`gpuyard serve` on a machine with Docker offers it as the `local` server.

The agent app runs in-process (uvicorn on 127.0.0.1, a free port, a fresh token, in a
daemon thread) and the `local` docker cluster and server are registered, or pointed at
the new agent when they exist from an earlier start. GPUYARD_LOCAL_DOCKER=auto (the
default) does this only when the Docker socket exists and answers; off never; on insists.
"""

from __future__ import annotations

import socket
from pathlib import Path

from gpuyard.domain.server_state import ClusterKind
from gpuyard.log import get_logger
from gpuyard.runtimes.docker import agent_connection
from gpuyard.runtimes.local_agent import LOCAL, LocalAgent
from gpuyard.runtimes.local_agent import start_local_agent as start_agent_in_process
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.reported_servers import (
    ReportedServerSpec,
    create_reported_server,
    reporting_runtime,
)
from gpuyard.settings import Settings
from gpuyard.store import fleet

log = get_logger(__name__)
__all__ = ["LOCAL", "LocalAgent", "ensure_local_server", "start_local_agent"]


def docker_socket_answers(path: Path, timeout: float = 2.0) -> bool:
    """True when a Docker Engine answers its ping on the unix socket at ``path``."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(256)
    except OSError:
        return False


def local_docker_enabled(settings: Settings) -> bool:
    """Whether to offer the local Docker (raises when told ``on`` and there is none)."""
    if settings.local_docker == "off":
        return False
    answers = docker_socket_answers(settings.docker_socket)
    if settings.local_docker == "on" and not answers:
        raise RuntimeError(f"GPUYARD_LOCAL_DOCKER=on but {settings.docker_socket} does not answer")
    return answers


def start_local_agent(settings: Settings) -> LocalAgent:
    """The agent app in a daemon thread of this process (``runtimes.local_agent``)."""
    return start_agent_in_process(settings.docker_socket, settings.data_dir / "local-agent")


def ensure_local_server(ctx: ServiceContext, agent: LocalAgent) -> None:
    """Register the `local` cluster and server, or point them at this run's agent."""
    now = ctx.now()
    with ctx.db.write() as session:
        cluster = fleet.cluster_named(session, LOCAL) or fleet.add_cluster(
            session, LOCAL, ClusterKind.DOCKER.value, None, now
        )
        server_id = fleet.server_id_named(session, LOCAL)
        if server_id is not None:
            secret_enc = ctx.secret_box.encrypt(agent.token)
            fleet.repoint_server(session, server_id, agent.url, secret_enc)
            return
    spec = ReportedServerSpec(
        LOCAL, cluster.id, agent_connection(agent.url, agent.token), {"local": "true"}
    )
    runtime = reporting_runtime(ctx, cluster)
    create_reported_server(ctx, None, spec, runtime)  # asks the agent outside the transaction
    log.info("local_docker_server_registered", url=agent.url)
