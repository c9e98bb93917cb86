"""Pool read models -> API schemas."""

from __future__ import annotations

from gpuyard.api.schemas.pools import PoolMemberPublic, PoolPublic
from gpuyard.domain.pools import PoolStatus, container_name


def pool_public(status: PoolStatus) -> PoolPublic:
    spec = status.spec
    request = spec.request
    failures = status.failures
    return PoolPublic(
        id=spec.id,
        name=spec.name,
        image_type=spec.image_type,
        image=spec.image,
        server_id=spec.server_id,
        cluster_id=spec.cluster_id,
        target_size=spec.target_size,
        port_min=spec.port_min,
        port_max=spec.port_max,
        container_port=spec.container_port,
        cpu=request.cpu,
        ram_gb=request.ram_gb,
        storage_gb=request.storage_gb,
        gpu=request.gpu,
        command=spec.command,
        env=dict(spec.env),
        files_path=spec.files_path,
        available=status.available,
        warming=status.warming,
        assigned=status.assigned,
        members=[
            PoolMemberPublic(
                workload_id=m.workload_id,
                pool_index=m.pool_index,
                state=m.state.value,
                status=m.status,
                owner_id=m.owner_id,
                name=m.name,
                server_id=m.server_id,
                host_port=m.host_port,
                container_name=container_name(
                    spec.image_type, m.pool_index, m.host_port, m.workload_id
                ),
            )
            for m in status.members
        ],
        failures=failures.count if failures else 0,
        failing_since=failures.first_at if failures else None,
        last_failure_at=failures.last_at if failures else None,
        last_failure=failures.last_reason if failures else None,
        refill_after=failures.refill_at() if failures else None,
        created_at=spec.created_at,
        updated_at=spec.updated_at,
    )
