"""Registering docker servers: capacity comes from the agent's inventory.

The agent is asked BEFORE the transaction opens (never a network call inside one); an
agent that does not answer, or refuses the token, is a 422 naming ``agent_url`` or
``agent_token`` and nothing is written. The token is stored encrypted (secret box) and
never returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuyard.agent.models import Inventory
from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.resources import GPU_MILLI
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.runtimes.docker import AgentClient, AgentError, AgentUnreachable
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import cluster_of_kind, ensure_server_name_free
from gpuyard.services.identity.audit import SYSTEM_ACTOR, AuditActor, record_audit
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow


@dataclass
class DockerServerSpec:
    name: str
    cluster_id: str
    agent_url: str
    agent_token: str
    labels: dict[str, str] = field(default_factory=dict)
    #: This server's own host port range (overrides the per-image-type ranges).
    host_ports: tuple[int, int] | None = None


def fetch_inventory(agent_url: str, agent_token: str) -> Inventory:
    """Ask the agent what its host has; 422 naming the field at fault when it cannot."""
    if not agent_url.startswith(("http://", "https://")):
        raise InvalidInput.for_field("agent_url", "must be an http:// or https:// URL")
    try:
        with AgentClient(agent_url, agent_token, retries=1) as client:
            return client.inventory()
    except AgentUnreachable as exc:
        raise InvalidInput.for_field(
            "agent_url", f"the agent does not answer at {agent_url}: {exc.detail}"
        ) from exc
    except AgentError as exc:
        if exc.status == 401:
            raise InvalidInput.for_field(
                "agent_token", "the agent refused this token (401)"
            ) from exc
        raise InvalidInput.for_field(
            "agent_url", f"the agent answered {exc.status}: {exc.detail}"
        ) from exc


def create_docker_server(
    ctx: ServiceContext, caller: Caller | None, spec: DockerServerSpec
) -> ServerRow:
    """Register (``caller`` None: the system, for the local server) a docker server."""
    with ctx.db.read() as session:
        cluster_of_kind(
            session,
            spec.cluster_id,
            ClusterKind.DOCKER,
            "agent_url",
            "agent_url and agent_token are for docker clusters",
        )
    inventory = fetch_inventory(spec.agent_url, spec.agent_token)  # outside any transaction
    now = ctx.now()
    with ctx.db.write() as session:
        ensure_server_name_free(session, spec.name)
        row = ServerRow(
            name=spec.name,
            cluster_id=spec.cluster_id,
            status=ServerStatus.ONLINE.value,
            labels=dict(spec.labels),
            agent_url=spec.agent_url,
            agent_token_enc=ctx.secret_box.encrypt(spec.agent_token),
            host_port_min=spec.host_ports[0] if spec.host_ports else None,
            host_port_max=spec.host_ports[1] if spec.host_ports else None,
            cpu_milli=0,
            ram_mib=0,
            storage_mib=0,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            gpus=[],
        )
        apply_inventory(row, inventory)
        session.add(row)
        session.flush()
        actor = AuditActor.of(caller) if caller else SYSTEM_ACTOR
        details = {
            "name": row.name,
            "cluster_id": row.cluster_id,
            "agent_url": row.agent_url,
            "agent": inventory.agent_name,
            "cpu_milli": row.cpu_milli,
            "ram_mib": row.ram_mib,
            "gpus": len(inventory.gpus),
        }
        record_audit(session, actor, "server.create", "server", row.id, now, details)
    ctx.scheduler_wakeup.notify()
    return row


def apply_inventory(row: ServerRow, inventory: Inventory) -> None:
    """Capacity and GPUs from an agent's inventory (a registration or a refresh while the
    server holds nothing)."""
    row.cpu_milli = inventory.cpu_count * 1000
    row.ram_mib = inventory.ram_total_mib
    row.storage_mib = inventory.disk_total_mib
    row.gpu_milli = GPU_MILLI * len(inventory.gpus)
    row.gpus = [
        ServerGpuRow(
            gpu_index=gpu.index,
            uuid=gpu.uuid,
            model=gpu.name,
            memory_mib=gpu.memory_total_mib or 0,
            utilization_pct=gpu.utilization_gpu_pct,
        )
        for gpu in inventory.gpus
    ]
