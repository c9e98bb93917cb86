"""Identity rows to public schemas: users with teams, teams, invites, tokens, audit."""

from __future__ import annotations

from gpuyard.api.converters import user_public
from gpuyard.api.schemas.audit import AuditEventPublic
from gpuyard.api.schemas.auth import CurrentUserPublic, TeamMembershipPublic
from gpuyard.api.schemas.identity import InvitePublic, Quota, TeamMemberPublic, TeamPublic
from gpuyard.api.schemas.team_invitations import MyTeamInvitationPublic, TeamInvitationPublic
from gpuyard.api.schemas.tokens import ApiTokenCreated, ApiTokenPublic
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
from gpuyard.services.identity.team_invitations import JoinedTeam, MyInvitation, PendingInvitation
from gpuyard.services.identity.teams import TeamView
from gpuyard.services.identity.users import TeamMembership
from gpuyard.store.audit_tables import AuditEventRow
from gpuyard.store.base import as_utc
from gpuyard.store.identity_tables import InviteRow, UserRow
from gpuyard.store.token_tables import ApiTokenRow


def current_user_public(row: UserRow, teams: list[TeamMembership]) -> CurrentUserPublic:
    return CurrentUserPublic(
        **user_public(row).model_dump(),
        teams=[
            TeamMembershipPublic(
                team_id=m.team.id, team_name=m.team.name, is_team_admin=m.is_team_admin
            )
            for m in teams
        ],
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
        members_can_read=team.members_can_read,
        members=[
            TeamMemberPublic(user_id=user.id, email=user.email, is_team_admin=is_admin)
            for user, is_admin in view.members
        ],
        pending_invitations=[pending_invitation_public(i) for i in view.invitations],
        created_at=as_utc(team.created_at),
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


def joined_team_public(joined: JoinedTeam) -> TeamMembershipPublic:
    return TeamMembershipPublic(
        team_id=joined.team.id, team_name=joined.team.name, is_team_admin=joined.is_team_admin
    )


def invite_public(row: InviteRow, code: str) -> InvitePublic:
    return InvitePublic(
        id=row.id,
        code=code,
        email=row.email,
        role=row.role,
        team_id=row.team_id,
        expires_at=as_utc(row.expires_at),
    )


def api_token_public(row: ApiTokenRow) -> ApiTokenPublic:
    return ApiTokenPublic(
        id=row.id,
        name=row.name,
        display_prefix=row.display_prefix,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at) if row.expires_at else None,
        last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
    )


def api_token_created(row: ApiTokenRow, token: str) -> ApiTokenCreated:
    return ApiTokenCreated(**api_token_public(row).model_dump(), token=token)


def audit_event_public(row: AuditEventRow) -> AuditEventPublic:
    return AuditEventPublic(
        id=row.id,
        at=as_utc(row.at),
        actor_id=row.actor_id,
        actor_email=row.actor_email,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        ip=row.ip,
        details=dict(row.details or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
