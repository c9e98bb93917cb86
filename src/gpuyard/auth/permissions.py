"""The permission policy: one table of role x action x ownership, read by everything.

Every route declares one :class:`Permission` (api/authorization.py refuses to build an
app with a route that does not). The route-level check asks only "may this role do this
at all?" (403 when not); a service that acts on one object asks :func:`allows` with the
object's owner and team, and answers 404 when the caller may not even read the object
(so nobody learns that it exists) and 403 when they may read but not change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from gpuyard.auth.roles import Role


class Permission(StrEnum):
    # Open to anyone, with or without credentials.
    HEALTH = "health"
    API_DOCS = "api.docs"  # the API reference page (the OpenAPI document is open too)
    #: The dashboard's static files (the page itself asks the API who is logged in).
    DASHBOARD = "dashboard"
    AUTH_LOGIN = "auth.login"
    AUTH_REGISTER = "auth.register"
    # The caller's own session, account and API tokens.
    SESSION = "session"
    TOKEN_MANAGE = "token.manage"  # noqa: S105 - a permission name
    # Identity administration.
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    INVITE_CREATE = "invite.create"
    #: List invites (pending, used, expired) and revoke unused ones.
    INVITE_READ = "invite.read"
    INVITE_REVOKE = "invite.revoke"
    TEAM_READ = "team.read"
    TEAM_CREATE = "team.create"
    TEAM_MANAGE = "team.manage"
    #: A team's quota and its highest workload priority (the priority policy).
    TEAM_SET_QUOTA = "team.set_quota"
    #: Make a user a member without their acceptance (team admins invite instead).
    TEAM_ADD_MEMBER = "team.add_member"
    #: See, accept and decline one's own team invitations.
    TEAM_JOIN = "team.join"
    #: The fair-share view: each team's guarantee, usage, borrowing and fair share
    #: (users: the teams they belong to and their departments).
    FAIRSHARE_READ = "fairshare.read"
    # The fleet.
    FLEET_READ = "fleet.read"
    CLUSTER_MANAGE = "cluster.manage"
    SERVER_MANAGE = "server.manage"
    SERVER_CLEANUP = "server.cleanup"  # remove what gpuyard left on a host (or list it)
    #: A server's SSH settings (host, user, key) and its pinned host key (un-pin).
    SERVER_SSH_MANAGE = "server.ssh_manage"
    #: Open a terminal on a server's own host (a shell as the configured SSH user).
    SERVER_SSH = "server.ssh"
    #: The image catalog, and the images present on each host.
    IMAGE_READ = "image.read"
    #: Catalog entries, and pulling, building and pushing images on hosts.
    IMAGE_MANAGE = "image.manage"
    #: Registries (name, address, user; never the password): to push to one.
    REGISTRY_READ = "registry.read"
    #: Add and delete registries and their credentials.
    REGISTRY_MANAGE = "registry.manage"
    POOL_MANAGE = "pool.manage"
    # Work.
    WORKLOAD_CREATE = "workload.create"
    #: Ask where a submission would go now (POST /workloads/plan); writes nothing.
    WORKLOAD_PLAN = "workload.plan"
    WORKLOAD_READ = "workload.read"
    WORKLOAD_CHANGE = "workload.change"
    #: Read the values of a workload's env (others see the keys, values masked, except
    #: the keys its owner marked plain).
    WORKLOAD_READ_ENV = "workload.read_env"
    # Oversight.
    # Idle culling's policies (issue 19): every policy read by the fleet's keepers; image
    # types' policies and a team's "never" set by admins (team admins set their team's).
    CULLING_READ = "culling.read"
    CULLING_MANAGE = "culling.manage"
    AUDIT_READ = "audit.read"
    #: Walk the whole hash chain (GET /audit/verify): admins, as `gpuyard audit verify`.
    AUDIT_VERIFY = "audit.verify"
    #: Prometheus metrics (GET /metrics): fleet-wide figures, no one user's data. A
    #: scraper may present GPUYARD_METRICS_TOKEN instead (api/metrics_access.py).
    METRICS_READ = "metrics.read"
    #: Open a workload's routed port (/u/<user>/<workload>/<port>/, asked by nginx's
    #: auth_request): its owner; admins any workload's.
    ROUTING_ACCESS = "routing.access"
    #: Start the login to a routing host of its own (GET /routing/login): open, since the
    #: browser arrives from that host without the dashboard's cookie; the endpoint reads
    #: the session itself and sends a visitor without one to the login page.
    ROUTING_LOGIN = "routing.login"
    #: Redeem a routing ticket (GET /routing/session, through the routing host): open,
    #: the signed single-use ticket is the credential.
    ROUTING_SESSION = "routing.session"


class Scope(StrEnum):
    """Which objects a role may act on under a permission."""

    ANY = "any"
    #: Objects the caller owns (their workloads, their tokens, their own account).
    OWN = "own"
    #: Own objects, plus those of teams that let members read each other's work.
    OWN_OR_TEAM = "own or team-readable"
    #: Teams the caller is a member of.
    MEMBER = "member"
    #: Teams the caller administers (team admins).
    TEAM_ADMIN = "team admin"


@dataclass(frozen=True)
class Rule:
    scopes: Mapping[Role, Scope] = field(default_factory=dict)
    #: No credentials needed (login, register, health).
    public: bool = False


@dataclass(frozen=True)
class Target:
    """The object a permission is asked about."""

    owner_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True)
class Membership:
    """The caller's teams, as far as the policy needs them."""

    member_of: frozenset[str] = frozenset()
    admin_of: frozenset[str] = frozenset()
    #: Teams whose members may read each other's workloads.
    readable: frozenset[str] = frozenset()


_PUBLIC = Rule(public=True)
_EVERYONE = {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.ANY, Role.USER: Scope.ANY}
_OWN = {Role.ADMIN: Scope.OWN, Role.OPERATOR: Scope.OWN, Role.USER: Scope.OWN}
_ADMIN = {Role.ADMIN: Scope.ANY}
_FLEET = {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.ANY}
_TEAM_ADMINS = {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.TEAM_ADMIN, Role.USER: Scope.TEAM_ADMIN}

POLICY: Final[Mapping[Permission, Rule]] = {
    Permission.HEALTH: _PUBLIC,
    Permission.API_DOCS: _PUBLIC,
    Permission.DASHBOARD: _PUBLIC,
    Permission.AUTH_LOGIN: _PUBLIC,
    Permission.AUTH_REGISTER: _PUBLIC,
    Permission.ROUTING_LOGIN: _PUBLIC,
    Permission.ROUTING_SESSION: _PUBLIC,
    Permission.SESSION: Rule(_OWN),
    Permission.TOKEN_MANAGE: Rule(_OWN),
    Permission.USER_READ: Rule(_ADMIN),
    Permission.USER_MANAGE: Rule(_ADMIN),
    Permission.INVITE_CREATE: Rule(_TEAM_ADMINS),
    Permission.INVITE_READ: Rule(_ADMIN),
    Permission.INVITE_REVOKE: Rule(_ADMIN),
    Permission.TEAM_READ: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.ANY, Role.USER: Scope.MEMBER}
    ),
    Permission.FAIRSHARE_READ: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.ANY, Role.USER: Scope.MEMBER}
    ),
    Permission.TEAM_CREATE: Rule(_ADMIN),
    Permission.TEAM_MANAGE: Rule(_TEAM_ADMINS),
    Permission.TEAM_SET_QUOTA: Rule(_ADMIN),
    # Team admins invite; the invited user's acceptance (team.join) makes the membership.
    Permission.TEAM_ADD_MEMBER: Rule(_ADMIN),
    Permission.TEAM_JOIN: Rule(_OWN),
    Permission.FLEET_READ: Rule(_EVERYONE),
    Permission.CLUSTER_MANAGE: Rule(_FLEET),
    Permission.SERVER_MANAGE: Rule(_FLEET),
    Permission.SERVER_SSH_MANAGE: Rule(_FLEET),
    Permission.SERVER_SSH: Rule(_FLEET),
    Permission.SERVER_CLEANUP: Rule(_FLEET),
    # Everyone who launches reads the catalog; operators and admins keep it.
    Permission.IMAGE_READ: Rule(_EVERYONE),
    Permission.IMAGE_MANAGE: Rule(_FLEET),
    # Operators push to registries admins configured (whose passwords nobody reads back).
    Permission.REGISTRY_READ: Rule(_FLEET),
    Permission.REGISTRY_MANAGE: Rule(_ADMIN),
    Permission.POOL_MANAGE: Rule(_FLEET),
    # Submitting for a team needs membership (the team's quota applies); admins any team.
    Permission.WORKLOAD_CREATE: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.MEMBER, Role.USER: Scope.MEMBER}
    ),
    # Whoever may submit may ask where a submission would go (the same checks apply).
    Permission.WORKLOAD_PLAN: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.MEMBER, Role.USER: Scope.MEMBER}
    ),
    Permission.WORKLOAD_READ: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.ANY, Role.USER: Scope.OWN_OR_TEAM}
    ),
    Permission.WORKLOAD_CHANGE: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.ANY, Role.USER: Scope.OWN}
    ),
    # Env values are write-only secrets outside their owner: admins and operators too.
    Permission.WORKLOAD_READ_ENV: Rule(_OWN),
    Permission.CULLING_READ: Rule(_FLEET),
    Permission.CULLING_MANAGE: Rule(_ADMIN),
    Permission.AUDIT_READ: Rule(_FLEET),
    Permission.AUDIT_VERIFY: Rule(_ADMIN),
    Permission.METRICS_READ: Rule(_FLEET),
    # A routed port is the workload's own web app (a notebook, a shell): reaching it is
    # acting as its owner, so operators and team-mates do not; admins may (support).
    Permission.ROUTING_ACCESS: Rule(
        {Role.ADMIN: Scope.ANY, Role.OPERATOR: Scope.OWN, Role.USER: Scope.OWN}
    ),
}

#: Scopes that need the caller's team memberships to be evaluated.
MEMBERSHIP_SCOPES: Final = frozenset({Scope.OWN_OR_TEAM, Scope.MEMBER, Scope.TEAM_ADMIN})


def is_public(permission: Permission) -> bool:
    return POLICY[permission].public


def scope_of(role: Role, permission: Permission) -> Scope | None:
    """The objects ``role`` may act on under ``permission``; None: none at all."""
    return POLICY[permission].scopes.get(role)


def roles_allowed(permission: Permission) -> frozenset[Role]:
    return frozenset(POLICY[permission].scopes)


def allows(
    role: Role,
    user_id: str,
    permission: Permission,
    target: Target | None = None,
    membership: Membership | None = None,
) -> bool:
    """May a caller with ``role`` (and id ``user_id``) exercise ``permission`` on
    ``target``? Without a target the question is "on anything at all"."""
    if POLICY[permission].public:
        return True
    scope = scope_of(role, permission)
    if scope is None:
        return False
    if target is None or scope is Scope.ANY:
        return True
    teams = membership or Membership()
    owns = target.owner_id is not None and target.owner_id == user_id
    match scope:
        case Scope.OWN:
            return owns
        case Scope.OWN_OR_TEAM:
            return owns or (target.team_id is not None and target.team_id in teams.readable)
        case Scope.MEMBER:
            return target.team_id is not None and target.team_id in teams.member_of
        case Scope.TEAM_ADMIN:
            return target.team_id is not None and target.team_id in teams.admin_of
    return False  # pragma: no cover - every Scope is matched above


def policy_table() -> str:
    """The policy as a Markdown table (permission, then each role's scope): docs/security.md
    carries it, and a test keeps the two equal."""
    roles = list(Role)
    lines = [
        "| permission | " + " | ".join(role.value for role in roles) + " |",
        "| --- |" + " --- |" * len(roles),
    ]
    for permission, rule in POLICY.items():
        cells = [
            "anyone" if rule.public else (rule.scopes[r].value if r in rule.scopes else "-")
            for r in roles
        ]
        lines.append(f"| `{permission.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
