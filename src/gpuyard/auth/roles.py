"""Roles: admin (everything), operator (the fleet and all workloads, no user management),
user (own workloads, within their teams' quotas). What each may do is auth/permissions.py."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    USER = "user"
