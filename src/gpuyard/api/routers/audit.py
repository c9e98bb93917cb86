"""The audit log (admins and operators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.identity_converters import audit_event_public
from gpuyard.api.schemas.audit import AuditEventsPublic, AuditVerificationPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.audit import AuditFilter
from gpuyard.services.identity.audit import list_audit_events, verify_audit_chain

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditEventsPublic)
def list_events(
    ctx: ContextDep,
    _caller: Annotated[Caller, requires(Permission.AUDIT_READ)],
    actor: Annotated[str | None, Query(max_length=320, description="user id or email")] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="e.g. workload.create, or a prefix: workload."),
    ] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> AuditEventsPublic:
    """Who did what to which object, when and from where; newest first."""
    where = AuditFilter(actor, action, target_type, target_id, since, until)
    rows, count = list_audit_events(ctx, where, limit, offset)
    return AuditEventsPublic(data=[audit_event_public(r) for r in rows], count=count)


@router.get("/verify", response_model=AuditVerificationPublic)
def verify_chain(
    ctx: ContextDep, _caller: Annotated[Caller, requires(Permission.AUDIT_VERIFY)]
) -> AuditVerificationPublic:
    """Walk the whole hash chain (as ``gpuyard audit verify``): intact, or the first event
    that is edited, missing or unlinked."""
    report = verify_audit_chain(ctx)
    return AuditVerificationPublic(
        intact=report.intact,
        checked=report.checked,
        first_bad_id=report.first_bad_id,
        problem=report.problem,
        head_hash=report.head_hash,
    )
