"""Every table, imported once so that Base.metadata is complete (Alembic, create_all)."""

from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.base import Base
from gpuyard.store.culling_tables import CullingPolicyRow, WorkloadCullingRow
from gpuyard.store.fleet_tables import ClusterRow, ServerEventRow, ServerGpuRow, ServerRow
from gpuyard.store.host_ssh_tables import ServerSshRow
from gpuyard.store.identity_tables import (
    InviteRow,
    TeamInvitationRow,
    TeamMemberRow,
    TeamRow,
    UserRow,
)
from gpuyard.store.image_tables import ImageRow, RegistryRow
from gpuyard.store.lease_tables import LeaseRow
from gpuyard.store.pool_tables import PoolRow
from gpuyard.store.runtime_tables import ContainerTeardownRow, PortAllocationRow
from gpuyard.store.token_tables import ApiTokenRow, RevokedSessionRow
from gpuyard.store.usage_tables import TeamUsageDecayRow, UsageReadingRow, UsageSampleRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadEventRow, WorkloadRow

__all__ = [
    "AllocationRow",
    "ApiTokenRow",
    "AuditEventRow",
    "Base",
    "ClusterRow",
    "ContainerTeardownRow",
    "CullingPolicyRow",
    "ImageRow",
    "InviteRow",
    "LeaseRow",
    "PoolRow",
    "PortAllocationRow",
    "RegistryRow",
    "RevokedSessionRow",
    "ServerEventRow",
    "ServerGpuRow",
    "ServerRow",
    "ServerSshRow",
    "TeamInvitationRow",
    "TeamMemberRow",
    "TeamRow",
    "TeamUsageDecayRow",
    "UsageReadingRow",
    "UsageSampleRow",
    "UserRow",
    "WorkloadCullingRow",
    "WorkloadEventRow",
    "WorkloadRow",
]
