"""Who is making a request, as services see it."""

from __future__ import annotations

from dataclasses import dataclass

from gpuyard.auth.roles import FLEET_ROLES, Role


@dataclass(frozen=True)
class Caller:
    user_id: str
    email: str
    role: Role

    @property
    def sees_all_workloads(self) -> bool:
        return self.role in FLEET_ROLES

    @property
    def manages_fleet(self) -> bool:
        return self.role in FLEET_ROLES

    def owns_or_manages(self, owner_id: str) -> bool:
        return self.sees_all_workloads or owner_id == self.user_id
