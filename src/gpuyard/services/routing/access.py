"""The answer to nginx's ``auth_request``: may this caller open this route?

nginx accepts only 2xx (let through), 401 and 403 from the subrequest (anything else is a
500 to the user), so every "no" that is not "who are you?" is a 403 here, including a
route that names no running workload: nobody learns which routes exist.
"""

from __future__ import annotations

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Target, allows
from gpuyard.domain.errors import FieldError, Forbidden
from gpuyard.domain.routing import MAX_ROUTE_URI, parse_route_uri, user_segment
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.context import ServiceContext
from gpuyard.store.workloads import owner_usernames, workload_row

_NO_ROUTE = "no such route, or not yours to open"
#: The header nginx's authorize location sets (services/routing/config.py).
ROUTE_HEADER = "X-Original-URI"


def authorize_route(ctx: ServiceContext, caller: Caller, original_uri: str | None) -> None:
    """Return when ``caller`` may open the route ``original_uri`` names (the path of the
    nginx location that matched, sent as X-Original-URI); raise :class:`Forbidden`
    otherwise. The route must name a running workload, one of its ports, and its owner's
    user segment; the policy (``routing.access``) decides who besides the owner."""
    key = parse_route_uri(original_uri or "")
    if key is None:
        # A 403 (not a 422) even so: nginx turns any other status into a 500.
        message = f"not a route path (/u/<user>/<workload>/<port>/, {MAX_ROUTE_URI} at most)"
        raise Forbidden(f"{ROUTE_HEADER}: {message}", [FieldError(ROUTE_HEADER, message)])
    with ctx.db.read() as session:
        row = workload_row(session, key.workload_id)
        if row is None:
            raise Forbidden(_NO_ROUTE)
        owner_id, team_id, status, ports = row.owner_id, row.team_id, row.status, row.ports
        username = owner_usernames(session, [owner_id]).get(owner_id)
    if (
        status != WorkloadStatus.RUNNING.value
        or key.port not in [int(p) for p in ports or []]
        or user_segment(username, owner_id) != key.user
    ):
        raise Forbidden(_NO_ROUTE)
    target = Target(owner_id=owner_id, team_id=team_id)
    if not allows(caller.role, caller.user_id, Permission.ROUTING_ACCESS, target):
        raise Forbidden(_NO_ROUTE)
