"""Identity read models to public schemas: users with teams, teams, invites, tokens,
audit events. Times in the read models are UTC-aware already."""

from __future__ import annotations

from datetime import datetime

from gpuyard.api.schemas.audit import AuditEventPublic
from gpuyard.api.schemas.auth import CurrentUserPublic, TeamMembershipPublic, UserPublic
from gpuyard.api.schemas.identity import (
    GuaranteeBody,
    Hierarchy,
    InviteListedPublic,
    InvitePublic,
    Quota,
    TeamMemberPublic,
    TeamPublic,
    UserAccountPublic,
)
from gpuyard.api.schemas.team_invitations import MyTeamInvitationPublic, TeamInvitationPublic
from gpuyard.api.schemas.tokens import ApiTokenCreated, ApiTokenPublic
from gpuyard.domain.audit import AuditEvent
from gpuyard.domain.identity import (
    ApiToken,
    Invite,
    MyInvitation,
    PendingInvitation,
    TeamMembership,
    TeamView,
    User,
    UserAccount,
)
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB


def user_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        username=user.username,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at,
    )


def user_account_public(account: UserAccount) -> UserAccountPublic:
    return UserAccountPublic(
        **user_public(account.user).model_dump(), last_login_at=account.last_login_at
    )


def current_user_public(
    user: User, teams: list[TeamMembership], max_priority: int
) -> CurrentUserPublic:
    return CurrentUserPublic(
        **user_public(user).model_dump(),
        teams=[joined_team_public(m) for m in teams],
        max_priority=max_priority,
    )


def _per(value: int | None, unit: int) -> float | None:
    return None if value is None else round(value / unit, 3)


def team_public(view: TeamView) -> TeamPublic:
    team = view.team
    return TeamPublic(
        id=team.id,
        name=team.name,
        quota=Quota(
            cpu=_per(team.quota_cpu_milli, 1000),
            ram_gb=_per(team.quota_ram_mib, MIB_PER_GB),
            gpu=_per(team.quota_gpu_milli, GPU_MILLI),
        ),
        max_priority=team.max_priority,
        hierarchy=Hierarchy(
            parent_id=team.parent_id,
            guarantee=GuaranteeBody(
                cpu=team.guarantee_cpu_milli / 1000,
                ram_gb=round(team.guarantee_ram_mib / MIB_PER_GB, 3),
                storage_gb=round(team.guarantee_storage_mib / MIB_PER_GB, 3),
                gpu=team.guarantee_gpu_milli / GPU_MILLI,
                gpu_models={m: v / GPU_MILLI for m, v in team.guarantee_gpu_models},
            ),
            weight=team.quota_weight,
            gpu_model_limits={m: v / GPU_MILLI for m, v in team.limit_gpu_models},
            weights=dict(team.quota_weights),
            gpu_model_weights=dict(team.weight_gpu_models),
        ),
        members_can_read=team.members_can_read,
        members=[
            TeamMemberPublic(user_id=m.user_id, email=m.email, is_team_admin=m.is_team_admin)
            for m in view.members
        ],
        pending_invitations=[pending_invitation_public(i) for i in view.invitations],
        created_at=team.created_at,
    )


def pending_invitation_public(item: PendingInvitation) -> TeamInvitationPublic:
    return TeamInvitationPublic(
        id=item.id,
        user_id=item.user_id,
        email=item.email,
        is_team_admin=item.is_team_admin,
        invited_by=item.invited_by,
        created_at=item.created_at,
        expires_at=item.expires_at,
    )


def my_invitation_public(item: MyInvitation) -> MyTeamInvitationPublic:
    return MyTeamInvitationPublic(
        id=item.id,
        team_id=item.team_id,
        team_name=item.team_name,
        is_team_admin=item.is_team_admin,
        invited_by_email=item.invited_by_email,
        created_at=item.created_at,
        expires_at=item.expires_at,
    )


def joined_team_public(joined: TeamMembership) -> TeamMembershipPublic:
    return TeamMembershipPublic(
        team_id=joined.team.id,
        team_name=joined.team.name,
        is_team_admin=joined.is_team_admin,
        max_priority=joined.team.max_priority,
    )


def invite_public(invite: Invite, code: str) -> InvitePublic:
    return InvitePublic(
        id=invite.id,
        code=code,
        email=invite.email,
        role=invite.role,
        team_id=invite.team_id,
        expires_at=invite.expires_at,
    )


def api_token_public(token: ApiToken) -> ApiTokenPublic:
    return ApiTokenPublic(
        id=token.id,
        name=token.name,
        display_prefix=token.display_prefix,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


def api_token_created(token: ApiToken, secret: str) -> ApiTokenCreated:
    return ApiTokenCreated(**api_token_public(token).model_dump(), token=secret)


def audit_event_public(event: AuditEvent) -> AuditEventPublic:
    return AuditEventPublic(
        id=event.id,
        at=event.at,
        actor_id=event.actor_id,
        actor_email=event.actor_email,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        ip=event.ip,
        details=dict(event.details),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def invite_listed_public(invite: Invite, now: datetime) -> InviteListedPublic:
    return InviteListedPublic(
        id=invite.id,
        email=invite.email,
        role=invite.role,
        team_id=invite.team_id,
        status=invite.status_at(now).value,
        created_by=invite.created_by,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
        used_at=invite.used_at,
        used_by=invite.used_by,
    )
