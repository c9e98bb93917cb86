"""Roles. The full permission policy comes with the identity issue; the roles exist now."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    USER = "user"


#: Roles that see and act on every workload and manage servers.
FLEET_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.OPERATOR})
