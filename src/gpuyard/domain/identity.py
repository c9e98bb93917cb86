"""Read models of the identity aggregates: users, teams and their members, team
invitations, invites and API tokens, as services hand them to the API.

Pure data, built by the store (store/identity.py) inside the session that read it; times
are UTC-aware. Secrets (password hashes, token and code digests) are not part of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class User:
    id: str
    email: str
    username: str | None
    role: str
    is_active: bool
    created_at: datetime
    #: When the password last changed or was reset; sessions issued before are refused.
    credentials_changed_at: datetime | None = None


@dataclass(frozen=True)
class UserAccount:
    """A user as the admins' user list shows them."""

    user: User
    #: The last successful login (from the audit log); None: never, or not recorded.
    last_login_at: datetime | None


#: The resources a team's over-quota weight may be set for one by one, as the API names
#: them (the quota tree's dimensions: cpu, ram, storage, gpu).
WEIGHTED_RESOURCES: tuple[str, ...] = ("cpu", "ram_gb", "storage_gb", "gpu")


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    #: Quota in stored units (milli-CPU, MiB, milli-GPU); None = unlimited.
    quota_cpu_milli: int | None
    quota_ram_mib: int | None
    quota_gpu_milli: int | None
    members_can_read: bool
    created_at: datetime
    #: The highest priority the team's work may ask for; None = the role's cap alone.
    max_priority: int | None = None
    #: Hierarchical quotas (issue 21): the department above, None at the top level.
    parent_id: str | None = None
    #: Guaranteed (deserved) resources in stored units, lent while idle; 0 = none.
    guarantee_cpu_milli: int = 0
    guarantee_ram_mib: int = 0
    guarantee_storage_mib: int = 0
    guarantee_gpu_milli: int = 0
    #: Weight of the team's claim on idle capacity among its siblings.
    quota_weight: int = 1
    #: Per-GPU-model guarantees, (model as written, milli-GPUs), a part of
    #: ``guarantee_gpu_milli`` that is reclaimed for work pinned to that model.
    guarantee_gpu_models: tuple[tuple[str, int], ...] = ()
    #: Per-GPU-model limits, (model as written, milli-GPUs): at most this much of each
    #: model held at once by the team's work (a department's: with its teams').
    limit_gpu_models: tuple[tuple[str, int], ...] = ()
    #: Over-quota weights of single resources where they differ from ``quota_weight``,
    #: (resource, weight), resource one of :data:`WEIGHTED_RESOURCES`.
    quota_weights: tuple[tuple[str, int], ...] = ()
    #: Per-GPU-model over-quota weights, (model as written, weight): the team's claim on
    #: that model's idle GPUs (a model not named: the team's GPU weight).
    weight_gpu_models: tuple[tuple[str, int], ...] = ()

    def resource_weights(self) -> tuple[int, int, int, int]:
        """The over-quota weight of each resource, in :data:`WEIGHTED_RESOURCES` order."""
        given = dict(self.quota_weights)
        return (
            given.get("cpu", self.quota_weight),
            given.get("ram_gb", self.quota_weight),
            given.get("storage_gb", self.quota_weight),
            given.get("gpu", self.quota_weight),
        )


@dataclass(frozen=True)
class TeamMember:
    """A member of a team, as the team's readers see it."""

    user_id: str
    email: str
    is_team_admin: bool


@dataclass(frozen=True)
class TeamMembership:
    """A team a user belongs to (or just joined), and whether they run it."""

    team: Team
    is_team_admin: bool


@dataclass(frozen=True)
class TeamRole:
    """One team of a user, with what the permission policy needs to know about it."""

    team_id: str
    is_team_admin: bool
    members_can_read: bool


@dataclass(frozen=True)
class PendingInvitation:
    """An invitation as its team's admins see it."""

    id: str
    user_id: str
    email: str
    is_team_admin: bool
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class MyInvitation:
    """An invitation as the invited user sees it."""

    id: str
    team_id: str
    team_name: str
    is_team_admin: bool
    invited_by_email: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TeamInvitation:
    """A stored team invitation (an offer to join a team, not yet answered)."""

    id: str
    team_id: str
    user_id: str
    is_team_admin: bool
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TeamView:
    """A team with its members (by email), and its pending invitations where the reader
    manages the team (else empty)."""

    team: Team
    members: list[TeamMember]
    invitations: list[PendingInvitation] = field(default_factory=list)


@dataclass(frozen=True)
class Invite:
    """A single-use registration code (the code itself is shown once, never stored)."""

    id: str
    email: str
    role: str
    team_id: str | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = None

    def status_at(self, now: datetime) -> InviteStatus:
        """Pending until used or expired; a used invite stays used after its expiry."""
        if self.used_at is not None:
            return InviteStatus.USED
        return InviteStatus.PENDING if self.expires_at > now else InviteStatus.EXPIRED


class InviteStatus(StrEnum):
    PENDING = "pending"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApiToken:
    """A user's API token (its digest is not part of it)."""

    id: str
    user_id: str
    name: str
    display_prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None = None
