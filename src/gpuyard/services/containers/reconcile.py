"""The reconcile loop: what the runtimes observe -> workload status; and recovery.

Per online (or draining) server whose runtime runs containers (docker), outside any
transaction, the runtime (the agent) lists its gpuyard containers. Then, against the
allocations the database records there:

- a recorded container that exited: exit code 0 -> the workload ``succeeded`` once every
  replica has; non-zero -> ``failed`` with the code (and OOM) in the reason; its
  reservation is released and the containers go to the cleanup loop;
- a recorded container that cannot start (its runtime says so: a pod whose image cannot
  be pulled) -> the workload ``failed`` with the runtime's reason;
- where the runtime's replicas run after their creation (kubernetes pods), a ``starting``
  workload whose replicas all run -> ``running``;

A workload whose replicas span servers (a multi-replica workload on several nodes) is
judged on all of them: its replicas on the other servers are asked of their runtimes
(``inspect``, by handle, no transaction open) before it goes ``running`` or
``succeeded``, so a server whose replicas run (or exited 0) does not decide alone; and a
replica on another server is never this server's "vanished" container or orphan (each
server's tick reads only its own allocations and its own containers).
- a recorded container that vanished while its workload should run (removed from
  outside), or was killed from outside (exit 137/143 without an OOM kill): **recovery**
  removes what is left and recreates it from the recorded spec on the same server (the
  agent's create is idempotent) and records the new container with an event;
- a gpuyard container no allocation knows (and no teardown is pending for): reported in
  the log, and removed (with an audit event) once older than ``orphan_grace_s``.

One server, container or workload never stops the rest: what fails in a way nothing
handles is logged once and skipped; a workload whose record cannot be turned into a
container spec, or whose finish cannot be written, is failed with a reason
(``services/loops/item_failures.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.errors import NotFound
from gpuyard.domain.runtime_records import ReplicaObservation
from gpuyard.domain.text import renderable
from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.runtimes.base import Runtime, RuntimeFailure
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.containers.replica_specs import (
    ReplicaJob,
    RuntimeServer,
    load_replica_jobs,
    servers_of_kinds,
)
from gpuyard.services.containers.starter import record_started
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit
from gpuyard.services.loops.item_failures import (
    blames_item,
    fail_workload,
    failure_reason,
    report_item_failure,
)
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.workloads.transitions import transition_workload
from gpuyard.store import containers as container_store
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

log = get_logger(__name__)
_LOOP = "reconcile"
_HOLDING = [s.value for s in HOLDS_RESOURCES]
_SIGNAL_EXITS = frozenset({137, 143})


@dataclass(frozen=True)
class _Recorded:
    """What the database says about one server: jobs for recorded containers, replicas
    being started, and handles waiting for teardown."""

    jobs: list[ReplicaJob]
    starting: set[tuple[str, int]]
    tearing_down: set[str]
    #: Allocations with a container whose spec cannot be built from what is stored.
    unbuildable: list[tuple[AllocationRow, Exception]]


def reconcile_servers(ctx: ServiceContext) -> None:
    """One tick of the reconcile loop, server by server."""
    with ctx.db.read() as session:
        kinds = ctx.runtimes.kinds_where(runs_containers)
        servers = servers_of_kinds(session, kinds, ["online", "draining"])
    for server_id, server in servers.items():
        name = server.name
        try:
            observed = ctx.runtimes.for_kind(server.kind).containers(name)
        except (RuntimeFailure, NotFound) as exc:
            log.info("reconcile_skipped", server=name, error=str(exc))
            continue
        except Exception as exc:  # an answer that is not a container list
            item = f"server {server_id}"
            report_item_failure(_LOOP, item, exc, "containers not listed", server=name)
            continue
        try:
            reconcile_server(ctx, server_id, server, observed)
        except Exception as exc:  # the other servers are reconciled all the same
            item = f"server {server_id}"
            report_item_failure(_LOOP, item, exc, "not reconciled", server=name)


def reconcile_server(
    ctx: ServiceContext, server_id: str, server: RuntimeServer, observed: list[ReplicaObservation]
) -> None:
    """Apply one server's observed containers (see the module docstring)."""
    runtime = ctx.runtimes.for_kind(server.kind)
    recorded = _load_recorded(ctx, server_id)
    by_id = {c.container_id: c for c in observed}
    finished: dict[str, list[tuple[int, ReplicaObservation]]] = {}
    cannot_start: dict[str, tuple[int, ReplicaObservation]] = {}
    running: dict[str, bool] = {}  # workload id -> every replica seen here runs
    known: set[str] = set()
    for allocation, exc in recorded.unbuildable:  # failed: their containers are torn down
        assert allocation.container_id is not None
        known.add(runtime.container_id(allocation.container_id))
        _give_up(ctx, allocation.workload_id, exc, "its container spec could not be built")
    for job in recorded.jobs:
        assert job.container_id is not None
        container_id = runtime.container_id(job.container_id)
        known.add(container_id)
        container = by_id.get(container_id)
        try:
            if container is None:
                _recover(ctx, runtime, job, "vanished")
            elif container.ended:
                if killed_from_outside(container):
                    _restart_killed(ctx, runtime, job, container)
                else:
                    finished.setdefault(job.workload_id, []).append((job.replica, container))
            elif container.cannot_start:
                cannot_start.setdefault(job.workload_id, (job.replica, container))
            else:
                running[job.workload_id] = running.get(job.workload_id, True) and (
                    container.running
                )
        except Exception as exc:  # this replica's own problem: the others go on
            if not blames_item(exc):
                raise
            _give_up(ctx, job.workload_id, exc, "its container could not be recovered")
    if finished:
        _add_finished_elsewhere(ctx, server_id, finished)
        _apply_finished(ctx, finished)
    if cannot_start:
        _apply_cannot_start(ctx, server.name, cannot_start)
    if runtime.running_when_observed:
        started = [w for w, runs in running.items() if runs and w not in cannot_start]
        started = _running_elsewhere_too(ctx, server_id, started)
        if started:
            _apply_running(ctx, server.name, started)
    for container in observed:
        handle = runtime.handle_of(server.name, container.container_id)
        if (
            container.container_id in known
            or handle in recorded.tearing_down
            or (container.workload_id, container.replica) in recorded.starting
        ):
            continue
        try:
            _orphan(ctx, runtime, server_id, handle, container)
        except Exception as exc:  # what the agent says of it cannot be stored, say
            report_item_failure(_LOOP, f"container {handle}", exc, "orphan not handled")


def _elsewhere(
    ctx: ServiceContext, server_id: str, workload_ids: list[str]
) -> dict[str, list[tuple[int, ReplicaObservation | None]]]:
    """{workload id: [(replica, what its runtime says of it now)]} of these workloads'
    replicas on other servers (None: no container yet, gone, or not answered). A short
    read, then the runtimes' ``inspect`` with no transaction open."""
    if not workload_ids:
        return {}
    with ctx.db.read() as session:
        recorded = container_store.replicas_elsewhere(session, workload_ids, server_id)
    seen: dict[str, list[tuple[int, ReplicaObservation | None]]] = {}
    for workload_id, replicas in recorded.items():
        for replica, handle, kind in replicas:
            observed: ReplicaObservation | None = None
            if handle is not None:
                try:
                    observed = ctx.runtimes.for_kind(kind).inspect(handle)
                except (RuntimeFailure, NotFound) as exc:
                    log.info("reconcile_elsewhere_unknown", handle=handle, error=str(exc))
            seen.setdefault(workload_id, []).append((replica, observed))
    return seen


def _running_elsewhere_too(
    ctx: ServiceContext, server_id: str, workload_ids: list[str]
) -> list[str]:
    """Those of ``workload_ids`` (whose replicas here all run) whose replicas on other
    servers run too: a workload on several nodes runs only when every node's pods do."""
    elsewhere = _elsewhere(ctx, server_id, workload_ids)
    return [
        w
        for w in workload_ids
        if all(seen is not None and seen.running for _, seen in elsewhere.get(w, []))
    ]


def _add_finished_elsewhere(
    ctx: ServiceContext, server_id: str, finished: dict[str, list[tuple[int, ReplicaObservation]]]
) -> None:
    """Add to each workload whose replicas here all exited 0 its replicas on other
    servers that exited 0 too, so that the last server to see its replicas end can tell
    the workload succeeded. (A replica that failed elsewhere is that server's to
    judge: it may have been killed from outside and be recreated.)"""
    clean = [w for w, replicas in finished.items() if all(c.exit_code == 0 for _, c in replicas)]
    for workload_id, replicas in _elsewhere(ctx, server_id, clean).items():
        finished[workload_id].extend(
            (replica, seen)
            for replica, seen in replicas
            if seen is not None and seen.ended and seen.exit_code == 0
        )


def _give_up(ctx: ServiceContext, workload_id: str, exc: Exception, what: str) -> None:
    report_item_failure(_LOOP, workload_id, exc, what)
    reason = failure_reason(f"{what} by the reconcile loop", exc)
    fail_workload(ctx, workload_id, reason, loop=_LOOP, expect=HOLDS_RESOURCES)


def _load_recorded(ctx: ServiceContext, server_id: str) -> _Recorded:
    with ctx.db.read() as session:
        allocations = container_store.allocations_on(session, server_id, _HOLDING)
        with_container = [a for a in allocations if a.container_id]
        unbuildable: list[tuple[AllocationRow, Exception]] = []
        jobs = load_replica_jobs(session, with_container, unbuildable) if with_container else []
        tearing_down = container_store.teardown_handles(session, server_id)
        starting = {(a.workload_id, a.replica) for a in allocations if not a.container_id}
    return _Recorded(jobs, starting, tearing_down, unbuildable)


def killed_from_outside(container: ReplicaObservation) -> bool:
    """Ended by SIGKILL or SIGTERM (exit 128+9 / 128+15) that gpuyard did not send: our own
    stops release the reservation first, so a container we stop is never reconciled here.
    An OOM kill is the workload's own failure, not an outside kill."""
    return container.exit_code in _SIGNAL_EXITS and not container.oom_killed


def _restart_killed(
    ctx: ServiceContext, runtime: Runtime, job: ReplicaJob, container: ReplicaObservation
) -> None:
    """Someone killed the container (``docker kill``): remove it, then recreate it."""
    assert job.container_id is not None
    log.warning("container_killed", workload_id=job.workload_id, exit_code=container.exit_code)
    try:
        runtime.remove(job.container_id)
    except (RuntimeFailure, NotFound) as exc:
        log.warning("recovery_failed", workload_id=job.workload_id, error=str(exc))
        return
    _recover(ctx, runtime, job, f"was killed from outside (exit {container.exit_code})")


def _recover(ctx: ServiceContext, runtime: Runtime, job: ReplicaJob, what_happened: str) -> None:
    """The container is gone while its workload should run: recreate it, same server."""
    log.warning("container_recovery", workload_id=job.workload_id, handle=job.container_id)
    try:
        handle = runtime.start(job)
    except (RuntimeFailure, NotFound) as exc:
        log.warning("recovery_failed", workload_id=job.workload_id, error=str(exc))
        return
    record_started(ctx, job, handle, "recreated", what_happened)


def _apply_finished(
    ctx: ServiceContext, finished: dict[str, list[tuple[int, ReplicaObservation]]]
) -> None:
    now = ctx.now()
    for workload_id, replicas in finished.items():
        try:
            with ctx.db.write() as session:
                workload = session.get(WorkloadRow, workload_id, populate_existing=True)
                if workload is None or workload.status not in _HOLDING:
                    continue
                _finish(session, workload, replicas, now)
        except StaleDataError:
            continue  # changed meanwhile: the next tick sees it again
        except Exception as exc:
            if not blames_item(exc):
                raise
            _give_up(ctx, workload_id, exc, "its finished containers could not be recorded")
    ctx.scheduler_wakeup.notify()


def _apply_cannot_start(
    ctx: ServiceContext, server_name: str, cannot: dict[str, tuple[int, ReplicaObservation]]
) -> None:
    """Replicas that wait for what will not come (an image that cannot be pulled): their
    workloads fail with the runtime's reason, their reservations released."""
    now = ctx.now()
    for workload_id, (replica, container) in cannot.items():
        try:
            with ctx.db.write() as session:
                workload = session.get(WorkloadRow, workload_id, populate_existing=True)
                if workload is None or workload.status not in _HOLDING:
                    continue
                release_workload(session, workload, reason=WorkloadStatus.FAILED.value)
                reason = (
                    f"replica {replica} cannot start on {renderable(server_name)}: "
                    f"{container.error}"
                )
                details = {"replica": replica, "error": container.error}
                transition_workload(
                    session, workload, WorkloadStatus.FAILED, reason, now, details=details
                )
        except StaleDataError:
            continue  # changed meanwhile: the next tick sees it again
        except Exception as exc:
            if not blames_item(exc):
                raise
            _give_up(ctx, workload_id, exc, "its replica that cannot start could not be failed")
    ctx.scheduler_wakeup.notify()


def _apply_running(ctx: ServiceContext, server_name: str, workload_ids: list[str]) -> None:
    """``starting`` workloads whose replicas are all seen running (here and, for those
    spanning servers, elsewhere: ``_running_elsewhere_too``; a runtime whose replicas run
    after their creation: pods) move to ``running``."""
    now = ctx.now()
    for workload_id in workload_ids:
        try:
            with ctx.db.write() as session:
                workload = session.get(WorkloadRow, workload_id, populate_existing=True)
                if workload is None or workload.status != WorkloadStatus.STARTING.value:
                    continue
                session.refresh(workload, ["allocations"])
                if any(a.container_id is None for a in workload.allocations):
                    continue  # a replica still to be created
                transition_workload(
                    session,
                    workload,
                    WorkloadStatus.RUNNING,
                    f"running on {renderable(server_name)}",
                    now,
                    details={"server": server_name},
                )
        except StaleDataError:
            continue
        except Exception as exc:
            if not blames_item(exc):
                raise
            report_item_failure(_LOOP, workload_id, exc, "not moved to running")


def _finish(
    session: Session,
    workload: WorkloadRow,
    replicas: list[tuple[int, ReplicaObservation]],
    now: datetime,
) -> None:
    failed = [(r, c) for r, c in replicas if c.exit_code != 0]
    if failed:
        replica, container = failed[0]
        oom = " (out of memory: killed at its RAM limit)" if container.oom_killed else ""
        said = f": {container.error}" if container.error and not container.oom_killed else ""
        reason = f"replica {replica} exited with code {container.exit_code}{oom}{said}"
        target = WorkloadStatus.FAILED
    elif len(replicas) == len(workload.allocations) == workload.replicas:
        reason, target = "every container exited with code 0", WorkloadStatus.SUCCEEDED
    else:
        return  # some replicas still run
    if workload.status == WorkloadStatus.SCHEDULED.value:
        transition_workload(session, workload, WorkloadStatus.STARTING, "container found", now)
    if workload.status == WorkloadStatus.STARTING.value:
        transition_workload(session, workload, WorkloadStatus.RUNNING, "container found", now)
    release_workload(session, workload, reason=target.value)
    details = {"exit_codes": {str(r): c.exit_code for r, c in replicas}}
    transition_workload(session, workload, target, reason, now, details=details)


def _orphan(
    ctx: ServiceContext,
    runtime: Runtime,
    server_id: str,
    handle: str,
    container: ReplicaObservation,
) -> None:
    """A gpuyard container with no reservation: report it; remove it after the grace."""
    created = container.created_at
    age = (ctx.now() - created).total_seconds() if created else float("inf")
    if age < ctx.settings.orphan_grace_s:
        log.warning("orphan_container", handle=handle, workload_id=container.workload_id)
        return
    try:
        runtime.remove(handle)
    except (RuntimeFailure, NotFound) as exc:
        log.warning("orphan_remove_failed", handle=handle, error=str(exc))
        return
    with ctx.db.write() as session:
        record_audit(
            session,
            SYSTEM_ACTOR,
            "container.orphan_removed",
            "server",
            server_id,
            ctx.now(),
            orphan_audit_details(handle, container),
        )
    log.warning("orphan_removed", handle=handle)


def orphan_audit_details(handle: str, container: ReplicaObservation) -> dict[str, str]:
    """What the audit keeps of a removed orphan: the runtime's own word for its state, so
    a state gpuyard does not know is not recorded as "unknown"."""
    return {
        "handle": handle,
        "workload_id": container.workload_id,
        "state": container.state_text or container.state.value,
    }
