"""`gpuyard serve` on a machine with Docker offers it as the `local` server.

The agent app runs in-process (uvicorn on 127.0.0.1, a free port, a fresh token, in a
daemon thread) and the `local` docker cluster and server are registered, or pointed at
the new agent when they exist from an earlier start. GPUYARD_LOCAL_DOCKER=auto (the
default) does this only when the Docker socket exists and answers; off never; on insists.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gpuyard.domain.server_state import ClusterKind
from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.docker_servers import DockerServerSpec, create_docker_server
from gpuyard.settings import Settings
from gpuyard.store import fleet
from gpuyard.store.fleet_tables import ClusterRow

log = get_logger(__name__)
LOCAL = "local"


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


@dataclass
class LocalAgent:
    url: str
    token: str
    thread: threading.Thread


def start_local_agent(settings: Settings) -> LocalAgent:
    """The agent app in a daemon thread of this process."""
    import uvicorn

    from gpuyard.agent.app import create_agent_app
    from gpuyard.agent.settings import AgentSettings

    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_urlsafe(32)
    config = AgentSettings(
        token=token,
        name=LOCAL,
        port=port,
        docker_host=f"unix://{settings.docker_socket}",
        data_dir=settings.data_dir / "local-agent",
    )
    server = uvicorn.Server(
        uvicorn.Config(create_agent_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="local-agent", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the local agent did not start")
        time.sleep(0.02)
    return LocalAgent(f"http://127.0.0.1:{port}", token, thread)


def ensure_local_server(ctx: ServiceContext, agent: LocalAgent) -> None:
    """Register the `local` cluster and server, or point them at this run's agent."""
    with ctx.db.write() as session:
        cluster = fleet.cluster_row_named(session, LOCAL)
        if cluster is None:
            cluster = ClusterRow(name=LOCAL, kind=ClusterKind.DOCKER.value, created_at=ctx.now())
            session.add(cluster)
            session.flush()
        cluster_id = cluster.id
        server = fleet.server_row_named(session, LOCAL)
        if server is not None:
            server.agent_url = agent.url
            server.agent_token_enc = ctx.secret_box.encrypt(agent.token)
            server.missed_probes = 0
            return
    spec = DockerServerSpec(LOCAL, cluster_id, agent.url, agent.token, {"local": "true"})
    create_docker_server(ctx, None, spec)  # asks the agent outside the transaction
    log.info("local_docker_server_registered", url=agent.url)
