"""The policy table: complete, and role x action x ownership answers as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuyard.auth.permissions import (
    POLICY,
    Membership,
    Permission,
    Scope,
    Target,
    allows,
    is_public,
    policy_table,
)
from gpuyard.auth.roles import Role

ME, OTHER, TEAM, OTHER_TEAM = "me", "someone-else", "team-a", "team-b"
READABLE_TEAM = Membership(member_of=frozenset({TEAM}), readable=frozenset({TEAM}))
CLOSED_TEAM = Membership(member_of=frozenset({TEAM}))
TEAM_ADMIN = Membership(member_of=frozenset({TEAM}), admin_of=frozenset({TEAM}))
NO_TEAM = Membership()


def test_every_permission_has_a_rule() -> None:
    assert set(POLICY) == set(Permission)
    for permission, rule in POLICY.items():
        assert rule.public != bool(rule.scopes), permission


def test_only_login_register_and_health_are_public() -> None:
    # The two routing ones carry their own credential (the dashboard session read by the
    # endpoint, a signed single-use ticket): services/routing/login.py.
    public = {p for p in Permission if is_public(p)}
    assert public == {
        Permission.AUTH_LOGIN,
        Permission.AUTH_REGISTER,
        Permission.ROUTING_LOGIN,
        Permission.ROUTING_SESSION,
        Permission.HEALTH,
        Permission.API_DOCS,
        Permission.DASHBOARD,
    }


def test_only_admins_manage_users_and_quotas() -> None:
    for permission in (
        Permission.USER_READ,
        Permission.USER_MANAGE,
        Permission.TEAM_CREATE,
        Permission.TEAM_SET_QUOTA,
        Permission.TEAM_ADD_MEMBER,
    ):
        assert {r for r in Role if allows(r, ME, permission)} == {Role.ADMIN}, permission


def test_operators_run_the_fleet_and_see_the_audit_log() -> None:
    for permission in (
        Permission.CLUSTER_MANAGE,
        Permission.SERVER_MANAGE,
        Permission.IMAGE_MANAGE,
        Permission.POOL_MANAGE,
        Permission.AUDIT_READ,
    ):
        assert {r for r in Role if allows(r, ME, permission)} == {Role.ADMIN, Role.OPERATOR}


CASES = [
    # (name, role, permission, target, membership, allowed)
    ("user reads own workload", Role.USER, Permission.WORKLOAD_READ, Target(ME), NO_TEAM, True),
    (
        "user cannot read another's",
        Role.USER,
        Permission.WORKLOAD_READ,
        Target(OTHER),
        NO_TEAM,
        False,
    ),
    (
        "user reads a teammate's when the team allows",
        Role.USER,
        Permission.WORKLOAD_READ,
        Target(OTHER, TEAM),
        READABLE_TEAM,
        True,
    ),
    (
        "not when the team does not allow it",
        Role.USER,
        Permission.WORKLOAD_READ,
        Target(OTHER, TEAM),
        CLOSED_TEAM,
        False,
    ),
    (
        "nor for another team",
        Role.USER,
        Permission.WORKLOAD_READ,
        Target(OTHER, OTHER_TEAM),
        READABLE_TEAM,
        False,
    ),
    (
        "reading a teammate's is not changing it",
        Role.USER,
        Permission.WORKLOAD_CHANGE,
        Target(OTHER, TEAM),
        READABLE_TEAM,
        False,
    ),
    ("user changes own", Role.USER, Permission.WORKLOAD_CHANGE, Target(ME), NO_TEAM, True),
    (
        "operator changes any",
        Role.OPERATOR,
        Permission.WORKLOAD_CHANGE,
        Target(OTHER),
        NO_TEAM,
        True,
    ),
    (
        "admin reads any",
        Role.ADMIN,
        Permission.WORKLOAD_READ,
        Target(OTHER, OTHER_TEAM),
        NO_TEAM,
        True,
    ),
    (
        "tokens are always own, even for admins",
        Role.ADMIN,
        Permission.TOKEN_MANAGE,
        Target(OTHER),
        NO_TEAM,
        False,
    ),
    (
        "team admin manages the team",
        Role.USER,
        Permission.TEAM_MANAGE,
        Target(team_id=TEAM),
        TEAM_ADMIN,
        True,
    ),
    (
        "a member does not",
        Role.USER,
        Permission.TEAM_MANAGE,
        Target(team_id=TEAM),
        CLOSED_TEAM,
        False,
    ),
    (
        "a member reads the team",
        Role.USER,
        Permission.TEAM_READ,
        Target(team_id=TEAM),
        CLOSED_TEAM,
        True,
    ),
    ("an outsider does not", Role.USER, Permission.TEAM_READ, Target(team_id=TEAM), NO_TEAM, False),
    (
        "operators read every team",
        Role.OPERATOR,
        Permission.TEAM_READ,
        Target(team_id=TEAM),
        NO_TEAM,
        True,
    ),
    (
        "team admin invites into the team",
        Role.USER,
        Permission.INVITE_CREATE,
        Target(team_id=TEAM),
        TEAM_ADMIN,
        True,
    ),
    (
        "but not into another",
        Role.USER,
        Permission.INVITE_CREATE,
        Target(team_id=OTHER_TEAM),
        TEAM_ADMIN,
        False,
    ),
    (
        "a team admin does not add members without their consent",
        Role.USER,
        Permission.TEAM_ADD_MEMBER,
        Target(team_id=TEAM),
        TEAM_ADMIN,
        False,
    ),
    (
        "admins add members directly",
        Role.ADMIN,
        Permission.TEAM_ADD_MEMBER,
        Target(),
        NO_TEAM,
        True,
    ),
    ("a user answers own invitations", Role.USER, Permission.TEAM_JOIN, Target(ME), NO_TEAM, True),
    (
        "not someone else's, even as admin",
        Role.ADMIN,
        Permission.TEAM_JOIN,
        Target(OTHER),
        NO_TEAM,
        False,
    ),
    (
        "the owner reads env values",
        Role.USER,
        Permission.WORKLOAD_READ_ENV,
        Target(ME),
        NO_TEAM,
        True,
    ),
    (
        "a teammate who reads the workload does not",
        Role.USER,
        Permission.WORKLOAD_READ_ENV,
        Target(OTHER, TEAM),
        READABLE_TEAM,
        False,
    ),
    (
        "nor does an operator",
        Role.OPERATOR,
        Permission.WORKLOAD_READ_ENV,
        Target(OTHER),
        NO_TEAM,
        False,
    ),
    (
        "nor an admin",
        Role.ADMIN,
        Permission.WORKLOAD_READ_ENV,
        Target(OTHER, OTHER_TEAM),
        NO_TEAM,
        False,
    ),
    (
        "an operator's team admin rights are scoped too",
        Role.OPERATOR,
        Permission.TEAM_MANAGE,
        Target(team_id=TEAM),
        NO_TEAM,
        False,
    ),
]


@pytest.mark.parametrize(
    ("role", "permission", "target", "membership", "allowed"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_ownership(
    role: Role, permission: Permission, target: Target, membership: Membership, allowed: bool
) -> None:
    assert allows(role, ME, permission, target, membership) is allowed


def test_scoped_permissions_pass_the_route_check() -> None:
    # Without a target the question is "may this role do this to anything at all".
    assert allows(Role.USER, ME, Permission.TEAM_MANAGE)
    assert POLICY[Permission.TEAM_MANAGE].scopes[Role.USER] is Scope.TEAM_ADMIN


def test_the_security_doc_carries_the_policy_as_it_is() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    assert policy_table() in doc, "regenerate the table in docs/security.md: policy_table()"
