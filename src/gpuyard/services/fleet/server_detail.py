"""One server with its GPU cards: who holds each device, as far as the reader may know.

The holder of a share is named (workload id, name, owner) only when the reader may read
that workload by the policy (workload.read, the same WHERE clause as the workload list);
otherwise the share shows as in use, with nothing that identifies the workload."""

from __future__ import annotations

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import NotFound
from gpuyard.domain.gpu_holders import ServerDetail
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import visible_workloads
from gpuyard.store.fleet import server_record, server_row
from gpuyard.store.workloads import gpu_holdings


def server_detail(ctx: ServiceContext, caller: Caller, server_id: str) -> ServerDetail:
    """The server, its GPUs and their holders in one read (NotFound when there is none)."""
    with ctx.db.read() as session:
        row = server_row(session, server_id)
        if row is None:
            raise NotFound.for_object("server", server_id)
        server = server_record(row)
        holdings = gpu_holdings(session, server_id, visible_workloads(caller))
    return ServerDetail(server, tuple(holdings))
