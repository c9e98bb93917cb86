"""Applying the permission policy (auth/permissions.py) to stored objects.

The route dependency has already checked the caller's role. Here the policy is asked
about one object, or turned into a WHERE clause for a list, using the caller's teams:
- not allowed to read the object: NotFound, exactly as if it did not exist;
- allowed to read but not to do this: Forbidden.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true
from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import (
    MEMBERSHIP_SCOPES,
    Membership,
    Permission,
    Scope,
    Target,
    allows,
    scope_of,
)
from gpuyard.domain.errors import Forbidden, NotFound
from gpuyard.domain.workload_records import Workload
from gpuyard.store import teams as team_store
from gpuyard.store.workload_tables import WorkloadRow

#: What a reader who may not see an env value gets in its place.
ENV_MASK = "********"


def load_membership(session: Session, user_id: str) -> Membership:
    """The user's teams, as the permission policy takes them."""
    roles = team_store.team_roles(session, user_id)
    return Membership(
        member_of=frozenset(r.team_id for r in roles),
        admin_of=frozenset(r.team_id for r in roles if r.is_team_admin),
        readable=frozenset(r.team_id for r in roles if r.members_can_read),
    )


def membership_for(session: Session, caller: Caller, *permissions: Permission) -> Membership:
    """The caller's teams, loaded only when one of ``permissions`` needs them."""
    if any(scope_of(caller.role, p) in MEMBERSHIP_SCOPES for p in permissions):
        return load_membership(session, caller.user_id)
    return Membership()


def may(
    session: Session,
    caller: Caller,
    permission: Permission,
    target: Target,
    membership: Membership | None = None,
) -> bool:
    teams = membership if membership is not None else membership_for(session, caller, permission)
    return allows(caller.role, caller.user_id, permission, target, teams)


def check_object(
    session: Session,
    caller: Caller,
    permission: Permission,
    target: Target,
    *,
    read: Permission,
    kind: str,
    object_id: str,
) -> None:
    """NotFound when the caller may not ``read`` the object; Forbidden when they may read
    it but not exercise ``permission`` on it."""
    teams = membership_for(session, caller, read, permission)
    if not allows(caller.role, caller.user_id, read, target, teams):
        raise NotFound.for_object(kind, object_id)
    if permission is not read and not allows(
        caller.role, caller.user_id, permission, target, teams
    ):
        raise Forbidden(f"you may not {permission.value.split('.')[-1]} this {kind}")


def visible_workloads(caller: Caller) -> ColumnElement[bool]:
    """WHERE clause: the workloads the caller may read (WORKLOAD_READ)."""
    scope = scope_of(caller.role, Permission.WORKLOAD_READ)
    own = WorkloadRow.owner_id == caller.user_id
    if scope is Scope.ANY:
        return true()
    if scope is Scope.OWN:
        return own
    if scope is Scope.OWN_OR_TEAM:
        readable_teams = team_store.team_ids_readable_by_members(caller.user_id)
        return or_(own, WorkloadRow.team_id.in_(readable_teams))
    return false()


def visible_teams(caller: Caller) -> ColumnElement[bool]:
    """WHERE clause: the teams the caller may read (TEAM_READ)."""
    scope = scope_of(caller.role, Permission.TEAM_READ)
    if scope is Scope.ANY:
        return true()
    if scope in (Scope.MEMBER, Scope.TEAM_ADMIN):
        return team_store.teams_of_member(caller.user_id, admin_only=scope is Scope.TEAM_ADMIN)
    return false()


def workload_target(row: WorkloadRow | Workload) -> Target:
    return Target(owner_id=row.owner_id, team_id=row.team_id)


def visible_env(caller: Caller, row: Workload) -> dict[str, str]:
    """The workload's env as ``caller`` may read it (WORKLOAD_READ_ENV): every key, and
    the values only for its owner; others see the values of the keys the owner marked
    plain, the rest masked. (The runtime gets the real values: replica_specs.py.)"""
    env = dict(row.env or {})
    if allows(caller.role, caller.user_id, Permission.WORKLOAD_READ_ENV, workload_target(row)):
        return env
    plain = set(row.plain_env_keys or ())
    return {key: value if key in plain else ENV_MASK for key, value in env.items()}
