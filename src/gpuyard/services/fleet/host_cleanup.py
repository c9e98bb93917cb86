"""Host cleanup per server (issue 19): stopped gpuyard containers past the retention,
dangling images, orphaned volumes and files directories, through the server's runtime.

On demand (``POST /api/v1/servers/{id}/cleanup``, a dry run or a real one) and scheduled
(the ``host-cleanup`` loop, off unless ``GPUYARD_HOST_CLEANUP_INTERVAL_S`` is set). Each
run reads the server and the workloads the database still holds there in a short read,
asks the runtime with no transaction open (rule 2 of docs/concurrency.md), then records a
real run's result as a server event (and, on demand, an audit event) in a short write.

The workloads holding an allocation on the server are sent along: their containers and
files stay whatever their age, so a cleanup never races the starter or the reconcile loop
for a workload still placed there. A runtime without host cleanup (kubernetes, for now)
is refused with a 409; the simulated runtime answers an honest "nothing to clean".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpuyard.auth.caller import Caller
from gpuyard.domain.cleanup_records import CleanupPolicy, HostCleanupReport
from gpuyard.domain.errors import Conflict, FieldError, NotFound, UpstreamProblem
from gpuyard.domain.server_state import ServerStatus
from gpuyard.domain.text import renderable
from gpuyard.log import get_logger
from gpuyard.runtimes.base import CleansHosts, Runtime, RuntimeFailure
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import SYSTEM_ACTOR, AuditActor, record_audit
from gpuyard.services.loops.item_failures import report_item_failure
from gpuyard.store.containers import workloads_allocated_on
from gpuyard.store.fleet import server_names_and_kinds, server_status_record, servers_of_kinds
from gpuyard.store.server_events import add_server_event

log = get_logger(__name__)
LOOP = "host-cleanup"
#: A server event keeps this many items of a run (the counts and the total keep all).
EVENT_ITEMS = 50
#: The scheduled loop cleans servers that take or finish work, not those an operator
#: has put in maintenance (someone may be working on the host) nor offline ones.
SCHEDULED_STATUSES = (ServerStatus.ONLINE.value, ServerStatus.DRAINING.value)


@dataclass(frozen=True)
class ServerCleanup:
    """One server's cleanup: which server, and the runtime's report."""

    server_id: str
    server_name: str
    report: HostCleanupReport


@dataclass(frozen=True)
class _Target:
    server_id: str
    name: str
    status: str
    kind: str
    keep: frozenset[str]


def cleans_hosts(runtime: Runtime) -> bool:
    """Whether servers of this runtime can be cleaned (and run containers at all)."""
    return isinstance(runtime, CleansHosts) and runtime.runs_containers


def clean_server(
    ctx: ServiceContext,
    caller: Caller,
    server_id: str,
    *,
    dry_run: bool,
    retention_s: float | None = None,
) -> ServerCleanup:
    """List (dry run) or remove what gpuyard left on one server. A real run is recorded as
    a server event and audited. 404: no such server; 409: its runtime has no host cleanup
    or it has no agent; the agent's own refusals are relayed."""
    target = _target(ctx, server_id)
    runtime = ctx.runtimes.for_kind(target.kind)
    if not isinstance(runtime, CleansHosts):
        raise Conflict(
            f"server {target.name!r} is a {target.kind} server: host cleanup is not "
            "available for it yet",
            [FieldError("server_id", f"no host cleanup for {target.kind} servers")],
        )
    policy = CleanupPolicy(
        dry_run=dry_run,
        retention_s=ctx.settings.host_cleanup_retention_s if retention_s is None else retention_s,
        keep_workloads=target.keep,
    )
    try:
        report = runtime.clean_host(target.name, policy)
    except NotFound as exc:
        raise Conflict(f"server {target.name!r} has no agent") from exc
    except RuntimeFailure as exc:
        errors = [FieldError(e.get("field", "server_id"), e.get("message", "")) for e in exc.errors]
        raise UpstreamProblem(exc.status, exc.detail, errors) from exc
    if not dry_run:
        _record(ctx, target, report, AuditActor.of(caller), audited=True)
    return ServerCleanup(target.server_id, target.name, report)


def clean_servers(ctx: ServiceContext) -> int:
    """One tick of the ``host-cleanup`` loop: a real run on every server of a runtime with
    host cleanup that is online or draining, one after the other (a cleanup is mostly
    Docker's disk work; running them side by side would only compete for it). A server
    that fails is logged once and the others go on. Returns how many items were removed."""
    kinds = ctx.runtimes.kinds_where(cleans_hosts)
    with ctx.db.read() as session:
        servers = servers_of_kinds(session, kinds, SCHEDULED_STATUSES)
    removed = 0
    for server_id in sorted(servers):
        try:
            removed += _clean_scheduled(ctx, server_id)
        except (NotFound, RuntimeFailure) as exc:
            log.info("host cleanup not done", server=servers[server_id][0], error=str(exc))
        except Exception as exc:  # one server's trouble never stops the others
            report_item_failure(LOOP, f"server {server_id}", exc, "not cleaned")
    return removed


def _clean_scheduled(ctx: ServiceContext, server_id: str) -> int:
    target = _target(ctx, server_id)
    runtime = ctx.runtimes.for_kind(target.kind)
    if not isinstance(runtime, CleansHosts):
        return 0
    policy = CleanupPolicy(False, ctx.settings.host_cleanup_retention_s, target.keep)
    report = runtime.clean_host(target.name, policy)
    if report.items:  # an empty run is not worth an event every tick
        _record(ctx, target, report, SYSTEM_ACTOR, audited=False)
    return report.removed


def _target(ctx: ServiceContext, server_id: str) -> _Target:
    with ctx.db.read() as session:
        server = server_status_record(session, server_id)
        if server is None:
            raise NotFound.for_object("server", server_id)
        _name, kind = server_names_and_kinds(session, [server_id])[server_id]
        keep = frozenset(workloads_allocated_on(session, server_id))
    return _Target(server.id, server.name, server.status, kind, keep)


def cleanup_summary(report: HostCleanupReport) -> str:
    """One line for the event's reason: what went and what it freed."""
    line = (
        f"cleanup removed {report.removed} item(s), freed {report.total_bytes} bytes"
        if report.items
        else "cleanup found nothing to remove"
    )
    if report.failed:
        line += f"; {report.failed} could not be removed"
    if report.skipped:
        line += f"; {report.skipped} changed meanwhile and stayed"
    return line


def cleanup_details(report: HostCleanupReport) -> dict[str, Any]:
    """What a server event keeps of a run: counts, total and its first items."""
    return {
        "cleanup": {
            "removed": report.removed,
            "failed": report.failed,
            "skipped": report.skipped,
            "freed_bytes": report.total_bytes,
            "items": [
                {
                    "kind": item.kind.value,
                    "id": item.id[:128],
                    "size_bytes": item.size_bytes,
                    "outcome": item.outcome.value,
                    **({"error": item.error[:300]} if item.error else {}),
                }
                for item in report.items[:EVENT_ITEMS]
            ],
            "more_items": max(0, len(report.items) - EVENT_ITEMS),
        }
    }


def _record(
    ctx: ServiceContext,
    target: _Target,
    report: HostCleanupReport,
    actor: AuditActor,
    *,
    audited: bool,
) -> None:
    """A server event (its status unchanged: from and to are the status it has now)."""
    now = ctx.now()
    with ctx.db.write() as session:
        server = server_status_record(session, target.server_id)
        if server is None:  # deleted meanwhile: nothing to record on
            return
        details = renderable(cleanup_details(report))  # agent text: NUL and surrogates out
        add_server_event(
            session,
            server.id,
            now,
            server.status,
            server.status,
            cleanup_summary(report),
            actor.user_id,
            details,
        )
        if audited:
            summary = {k: v for k, v in details["cleanup"].items() if k != "items"}
            record_audit(
                session, actor, "server.cleanup", "server", server.id, now,
                {"name": server.name, **summary},
            )  # fmt: skip
