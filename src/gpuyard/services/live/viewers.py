"""Who reads a stream: made when it opens, checked again while it stays open.

A stream can stay open for hours, so its caller is resolved again every
``stream_recheck_s`` from the credentials that opened it (a logout, a revoked token, a
changed password or role ends or narrows the stream) and their teams are read again
(a team that stops sharing its members' work stops showing it).
"""

from __future__ import annotations

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import Unauthenticated
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import membership_for
from gpuyard.services.identity.auth import resolve_caller
from gpuyard.services.live.subscription import Viewer


def open_viewer(ctx: ServiceContext, caller: Caller, kinds: frozenset[str]) -> Viewer:
    """The viewer of a stream ``caller`` opens for events of ``kinds``."""
    with ctx.db.read() as session:
        membership = membership_for(session, caller, Permission.WORKLOAD_READ)
    return Viewer(caller, membership, kinds)


def refresh_viewer(ctx: ServiceContext, viewer: Viewer, token: str, ip: str | None) -> bool:
    """Resolve ``token`` again and reload the teams into ``viewer``; False when the
    credentials no longer hold (the stream must end)."""
    try:
        caller = resolve_caller(ctx, token, ip)
    except Unauthenticated:
        return False
    if caller.user_id != viewer.caller.user_id:
        return False
    fresh = open_viewer(ctx, caller, viewer.kinds)
    viewer.caller, viewer.membership = fresh.caller, fresh.membership
    return True
