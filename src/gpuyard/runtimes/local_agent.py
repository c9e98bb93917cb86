"""The docker runtime's agent run inside the control plane's own process, for the `local`
server of `gpuyard serve` (``services.fleet.local_docker`` registers it).

Here rather than in services so that services reach the agent only through runtimes.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: The name the in-process agent reports (and the `local` server's name).
LOCAL = "local"


@dataclass
class LocalAgent:
    url: str
    token: str
    thread: threading.Thread


def start_local_agent(docker_socket: Path, data_dir: Path) -> LocalAgent:
    """The agent app on 127.0.0.1 (a free port, a fresh token) in a daemon thread of this
    process, driving the Docker Engine at ``docker_socket``; its files under ``data_dir``."""
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
        docker_host=f"unix://{docker_socket}",
        data_dir=data_dir,
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
