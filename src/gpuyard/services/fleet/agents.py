"""Clients of the agents of docker servers, built from the database and cached.

A client is keyed by the server's name and rebuilt when the server's agent URL or token
changes (re-registration). Reading the row is a short read transaction of its own; every
call a client makes is network I/O and must happen outside any transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gpuyard.auth.encryption import SecretBox
from gpuyard.domain.errors import NotFound
from gpuyard.runtimes.docker import AgentClient, AgentUnreachable
from gpuyard.store import fleet
from gpuyard.store.database import Database


@dataclass(frozen=True)
class _Entry:
    url: str
    token_enc: str
    tls_cert: str | None
    client: AgentClient


class AgentPool:
    """``client_for(server_name)`` for the docker runtime (``ServiceContext.runtimes``);
    thread-safe."""

    def __init__(self, db: Database, secret_box: SecretBox) -> None:
        self._db = db
        self._box = secret_box
        self._lock = threading.Lock()
        self._clients: dict[str, _Entry] = {}

    def client_for(self, server_name: str) -> AgentClient:
        """The client of ``server_name``'s agent (NotFound when it has none)."""
        with self._db.read() as session:
            agent_url, token_enc, tls_cert = fleet.agent_credentials(session, server_name)
        if not agent_url or not token_enc:
            raise NotFound.for_object("docker server", server_name)
        with self._lock:
            entry = self._clients.get(server_name)
            if (
                entry
                and entry.url == agent_url
                and entry.token_enc == token_enc
                and entry.tls_cert == tls_cert
            ):
                return entry.client
            if entry:
                entry.client.close()
            try:
                token = self._box.decrypt(token_enc)
                client = AgentClient(agent_url, token, tls_cert=tls_cert)
            except Exception as exc:  # a token no key opens, a URL httpx refuses
                # The server's fault, not its workloads': the loops treat it as an agent
                # that does not answer (health counts misses, the starter waits).
                cause = RuntimeError(f"no client can be built from its record: {exc!r}")
                raise AgentUnreachable(agent_url, cause) from exc
            self._clients[server_name] = _Entry(agent_url, token_enc, tls_cert, client)
            return client

    def close(self) -> None:
        with self._lock:
            for entry in self._clients.values():
                entry.client.close()
            self._clients.clear()
