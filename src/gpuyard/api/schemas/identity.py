"""Users (admin), teams and invites."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from gpuyard.api.schemas.auth import Email, NewPassword, Username, UserPublic
from gpuyard.api.schemas.common import ObjectId, RequestModel
from gpuyard.api.schemas.team_invitations import TeamInvitationPublic
from gpuyard.auth.roles import Role
from gpuyard.domain.limits import (
    MAX_INVITE_HOURS,
    MAX_QUOTA_CPU_CORES,
    MAX_QUOTA_GPUS,
    MAX_QUOTA_RAM_GB,
    MAX_QUOTA_WEIGHT,
    MAX_TEAM_MEMBERS,
)
from gpuyard.domain.priority import MAX_PRIORITY, MIN_PRIORITY

RoleField = Annotated[Role, Field(strict=False)]  # JSON strings name enum members
TeamName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
]


class UserCreate(RequestModel):
    email: Email
    password: NewPassword
    role: RoleField = Role.USER
    username: Username | None = None


class UserUpdate(RequestModel):
    role: RoleField | None = None
    is_active: bool | None = None
    username: Username | None = None
    password: NewPassword | None = None


class UserAccountPublic(UserPublic):
    """A user as admins list them."""

    last_login_at: datetime | None = Field(
        description="the last successful login; null: never (or before the audit log)"
    )


class UsersPublic(BaseModel):
    data: list[UserAccountPublic]
    count: int


class InviteCreate(RequestModel):
    email: Email
    role: RoleField = Role.USER
    team_id: ObjectId | None = None
    expires_in_hours: float | None = Field(default=None, gt=0, le=MAX_INVITE_HOURS)


class InvitePublic(BaseModel):
    id: str
    code: str = Field(description="shown once: give it to the invitee")
    email: str
    role: str
    team_id: str | None
    expires_at: datetime


class InviteListedPublic(BaseModel):
    """An invite as listed: its code is never shown again (only its digest is stored)."""

    id: str
    email: str
    role: str
    team_id: str | None
    status: str = Field(description="pending, used or expired (as of now)")
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by: str | None


class InvitesPublic(BaseModel):
    data: list[InviteListedPublic]
    count: int


class Quota(BaseModel):
    """A cap on what the team holds at once; a null dimension is unlimited."""

    cpu: float | None = Field(default=None, ge=0)
    ram_gb: float | None = Field(default=None, ge=0)
    gpu: float | None = Field(default=None, ge=0)


class QuotaBody(RequestModel):
    cpu: float | None = Field(default=None, ge=0, le=MAX_QUOTA_CPU_CORES, description="cores")
    ram_gb: float | None = Field(default=None, ge=0, le=MAX_QUOTA_RAM_GB)
    gpu: float | None = Field(default=None, ge=0, le=MAX_QUOTA_GPUS, description="GPUs")


class GuaranteeBody(RequestModel):
    """What a team is guaranteed (deserved); lent to others while idle, reclaimed by
    preemption when the team has pending work."""

    cpu: float = Field(default=0, ge=0, le=MAX_QUOTA_CPU_CORES, description="cores")
    ram_gb: float = Field(default=0, ge=0, le=MAX_QUOTA_RAM_GB)
    storage_gb: float = Field(default=0, ge=0, le=MAX_QUOTA_RAM_GB)
    gpu: float = Field(default=0, ge=0, le=MAX_QUOTA_GPUS, description="GPUs")
    gpu_models: dict[str, float] = Field(
        default_factory=dict,
        description='GPUs per model (for example {"H100": 8}; at most 16 models, one '
        "model each, together at most `gpu`): the part of the GPU guarantee reclaimed "
        "for the team's work pinned to that model",
    )


class HierarchyBody(RequestModel):
    """A team's place in the quota tree (admins only; two levels: department -> team)."""

    parent_id: ObjectId | None = Field(
        default=None, description="the department team; null: top level"
    )
    guarantee: GuaranteeBody = Field(default_factory=GuaranteeBody)
    weight: int = Field(
        default=1,
        ge=1,
        le=MAX_QUOTA_WEIGHT,
        description="share of idle capacity the team borrows, relative to its siblings",
    )
    gpu_model_limits: dict[str, float] = Field(
        default_factory=dict,
        description='at most this many GPUs of each model held at once (for example {"H100": '
        "4}; at most 16 models, one model each, each at least the guarantee of the same "
        "model); a department's limit covers its own work and its teams' together",
    )
    weights: dict[str, int] = Field(
        default_factory=dict,
        description="over-quota weights of single resources where they differ from "
        '`weight` (for example {"gpu": 4}; keys cpu, ram_gb, storage_gb, gpu; each 1 to '
        f"{MAX_QUOTA_WEIGHT}): the team's claim on that resource's idle capacity",
    )
    gpu_model_weights: dict[str, int] = Field(
        default_factory=dict,
        description='over-quota weights per GPU model (for example {"H100": 4}; at most 16 '
        f"models, one model each, each 1 to {MAX_QUOTA_WEIGHT}): the team's claim on that "
        "model's idle GPUs, which are then divided apart and order work pinned to the model; "
        "a model not named: the GPU weight",
    )


class Hierarchy(BaseModel):
    parent_id: str | None
    guarantee: GuaranteeBody
    weight: int
    gpu_model_limits: dict[str, float] = Field(
        default_factory=dict, description="GPUs of each model held at once at most"
    )
    weights: dict[str, int] = Field(
        default_factory=dict, description="over-quota weights of single resources"
    )
    gpu_model_weights: dict[str, int] = Field(
        default_factory=dict, description="over-quota weights per GPU model"
    )


class TeamMemberBody(RequestModel):
    user_id: ObjectId
    is_team_admin: bool = False


class TeamMemberRoleBody(RequestModel):
    is_team_admin: bool


#: A team's highest workload priority (admins only; null: the submitter's role's cap alone).
TeamMaxPriority = Annotated[
    int | None,
    Field(
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="the highest priority the team's workloads may ask for (admins only); "
        "null: only the submitter's role caps it",
    ),
]


class TeamCreate(RequestModel):
    name: TeamName
    quota: QuotaBody | None = None
    max_priority: TeamMaxPriority = None
    hierarchy: HierarchyBody | None = Field(default=None, description="admins only")
    members_can_read: bool = False
    members: list[TeamMemberBody] = Field(default_factory=list, max_length=MAX_TEAM_MEMBERS)


class TeamUpdate(RequestModel):
    name: TeamName | None = None
    quota: QuotaBody | None = Field(default=None, description="admins only; null removes the quota")
    max_priority: TeamMaxPriority = None
    hierarchy: HierarchyBody | None = Field(
        default=None, description="admins only; the team's parent, guarantee and weight"
    )
    members_can_read: bool | None = None
    members: list[TeamMemberBody] | None = Field(
        default=None,
        max_length=MAX_TEAM_MEMBERS,
        description="the complete new member list; users a team admin (not an admin) adds "
        "are invited and join when they accept (see pending_invitations)",
    )


class TeamMemberPublic(BaseModel):
    user_id: str
    email: str
    is_team_admin: bool


class TeamPublic(BaseModel):
    id: str
    name: str
    quota: Quota
    max_priority: int | None = Field(
        description="the highest priority the team's workloads may ask for; null: the "
        "submitter's role's cap alone"
    )
    hierarchy: Hierarchy
    members_can_read: bool
    members: list[TeamMemberPublic]
    pending_invitations: list[TeamInvitationPublic] = Field(
        description="users invited who have not answered yet (shown to who manages the team)"
    )
    created_at: datetime


class TeamsPublic(BaseModel):
    data: list[TeamPublic]
    count: int
