"""The culling loop (issue 19): idle workloads are warned, then stopped; so are those past
their maximum lifetime.

One tick, a page of :data:`PAGE` running workloads at a time:

1. One short read: the page (with placements), the loop's memory of each
   (``workload_culling``), the catalog's image types of their images and the docker
   servers' last GPU readings (the health loop's, fresh ones only). The policies are
   read once per tick.
2. No transaction open: each workload's utilisation now (:func:`_observe`), asked of its
   replicas' runtimes in a small thread pool (docker: one stats call per container),
   then the pure decision (``domain.culling.decide``).
3. One write per page, each workload in its own savepoint: its memory, an event when
   there is something to say, or the stop (only at the version read in step 1, else it
   is decided again next tick).

Where the utilisation comes from: a workload with GPUs is as busy as its busiest GPU
(simulated servers: the simulation; docker servers: the agent's nvidia-smi reading from
the health probe, which is the device's, so a shared GPU busy with another workload
counts as used); one without GPUs by its CPU time over its cores (docker: two readings
of its containers' cumulative CPU time, one tick apart; simulated: the simulation).
Kubernetes pods: their CPU from metrics-server (``metrics.k8s.io`` PodMetrics, already a
rate); a cluster without metrics-server, and GPU pods (metrics-server reports no GPU
utilisation), give no signal: never culled when idle, the reason said once in the
events and in ``GET /workloads/{id}/culling``. A reading that
is missing (an agent down, a stale GPU reading, the first CPU reading) is never taken for
idleness: the idle clock starts over.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.culling import (
    Action,
    CullMode,
    CullState,
    Decision,
    Lifetime,
    Observation,
    PolicyScope,
    PolicySettings,
    ReplicaUsageQuery,
    Signal,
    StoredPolicy,
    cpu_share_pct,
    decide,
    resolve_policy,
)
from gpuyard.domain.errors import NotFound
from gpuyard.domain.usage import GpuReading
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.runtimes.base import RuntimeFailure
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit
from gpuyard.services.loops.item_failures import blames_item, report_item_failure
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.workloads.transitions import transition_workload
from gpuyard.store import culling as culling_store
from gpuyard.store.culling import CullCandidate, StoredCullState
from gpuyard.store.workload_status import insert_workload_events
from gpuyard.store.workload_tables import WorkloadRow

LOOP = "culling"
#: Workloads per page: one read, their observations, one write.
PAGE = 200
#: Parallel runtime calls per page (docker: one stats call per container).
OBSERVERS = 8
#: A docker server's GPU reading older than this many health intervals is not used.
FRESH_INTERVALS = 3


@dataclass
class CullTick:
    """What one tick did."""

    looked_at: int = 0
    warned: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    noted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Looked:
    candidate: CullCandidate
    before: StoredCullState | None
    after: StoredCullState
    decision: Decision


def default_policy(ctx: ServiceContext) -> PolicySettings:
    """The global default (``GPUYARD_IDLE_CULL_*``)."""
    s = ctx.settings
    return PolicySettings(
        mode=CullMode(s.idle_cull_mode),
        threshold_pct=s.idle_cull_threshold_pct,
        window_s=s.idle_cull_window_s,
    )


class Policies:
    """The stored policies of one tick, by team and image type."""

    def __init__(self, default: PolicySettings, stored: list[StoredPolicy]) -> None:
        self.default = default
        self.teams = {p.subject: p.settings for p in stored if p.scope is PolicyScope.TEAM}
        self.image_types = {
            p.subject: p.settings for p in stored if p.scope is PolicyScope.IMAGE_TYPE
        }

    def may_stop_anything(self) -> bool:
        """Whether some policy turns idle culling on or sets a team's default lifetime
        (without that, only a workload's own lifetime can stop it)."""
        stored = [*self.teams.values(), *self.image_types.values()]
        return self.default.mode is CullMode.ON or any(
            p.mode is CullMode.ON or p.max_lifetime_s is not None for p in stored
        )

    def lifetime(self, candidate: CullCandidate) -> Lifetime | None:
        """The workload's own maximum lifetime, else its team's default for an open-ended
        workload (one without ``duration_s``)."""
        if candidate.started_at is None:
            return None
        if candidate.max_lifetime_s is not None:
            return Lifetime(candidate.started_at, candidate.max_lifetime_s, "set on the workload")
        team = self.teams.get(candidate.team_id or "")
        if team is not None and team.max_lifetime_s is not None and candidate.duration_s is None:
            return Lifetime(candidate.started_at, team.max_lifetime_s, "its team's default")
        return None


def cull_workloads(ctx: ServiceContext) -> CullTick:
    """One tick of the culling loop (see the module's docstring)."""
    now = ctx.now()
    tick = CullTick()
    with ctx.db.read() as session:
        policies = Policies(default_policy(ctx), culling_store.list_policies(session))
        # Culling off everywhere (the default) and no lifetime set: nothing could be warned
        # or stopped, so nothing is observed (a page of observations costs a runtime call
        # per replica and a write; at S1's size it slowed the worker's placements by ~15%).
        # Turned on later, idle clocks start then.
        idle = not policies.may_stop_anything() and not culling_store.any_running_with_lifetime(
            session
        )
    if idle:
        return tick
    fresh_since = now - timedelta(seconds=FRESH_INTERVALS * ctx.settings.health_interval_s)
    after: str | None = None
    with ThreadPoolExecutor(OBSERVERS, thread_name_prefix="culling") as pool:
        while True:
            with ctx.db.read() as session:
                page = culling_store.running_page(session, after, PAGE)
                if not page:
                    break
                ids = [c.workload_id for c in page]
                states = culling_store.cull_states(session, ids)
                types = culling_store.image_types_by_reference(session, {c.image for c in page})
                servers = {r.server_id for c in page for r in c.replicas}
                readings = culling_store.gpu_readings_since(session, servers, fresh_since)

            seen = _Seen(states, types, readings, policies)
            looked = [
                item
                for item in pool.map(lambda c, seen=seen: _look(ctx, c, seen, now), page)
                if item is not None
            ]
            _record(ctx, looked, now, tick)
            tick.looked_at += len(page)
            after = page[-1].workload_id
            if len(page) < PAGE:
                break
    with ctx.db.write() as session:
        culling_store.forget_finished(session)
    if tick.stopped:
        ctx.scheduler_wakeup.notify()
    return tick


@dataclass(frozen=True)
class _Seen:
    """What one page's read found beside the workloads."""

    states: Mapping[str, StoredCullState]
    types: Mapping[str, str]
    readings: Mapping[str, tuple[GpuReading, ...]]
    policies: Policies


def _look(
    ctx: ServiceContext, candidate: CullCandidate, seen: _Seen, now: datetime
) -> _Looked | None:
    """One workload's observation and decision; None when it cannot be looked at (its own
    trouble, logged once; it is looked at again next tick)."""
    before = seen.states.get(candidate.workload_id)
    policies = seen.policies
    try:
        image_type = seen.types.get(candidate.image)
        policy = resolve_policy(
            policies.default,
            policies.teams.get(candidate.team_id or ""),
            policies.image_types.get(image_type) if image_type is not None else None,
            image_type,
        )
        if policy.culled:
            observation, cpu = _observe(ctx, candidate, before, seen.readings, now)
        else:  # nothing to measure: no runtime call (a lifetime needs none either)
            observation, cpu = Observation(None, None), (None, None)
        state = before.state if before is not None else CullState()
        decision = decide(
            policy,
            state,
            observation,
            policies.lifetime(candidate),
            now,
            ctx.settings.idle_cull_warn_s,
        )
    except Exception as exc:  # this workload's trouble only; the others are looked at
        report_item_failure(LOOP, candidate.workload_id, exc, "not evaluated")
        return None
    after = StoredCullState(decision.state, cpu[0], cpu[1])
    return _Looked(candidate, before, after, decision)


CpuMark = tuple[float | None, datetime | None]


def _observe(
    ctx: ServiceContext,
    candidate: CullCandidate,
    before: StoredCullState | None,
    readings: Mapping[str, tuple[GpuReading, ...]],
    now: datetime,
) -> tuple[Observation, CpuMark]:
    """The workload's utilisation now and its cumulative CPU time (to keep for the next
    tick). Runtime calls happen here, with no transaction open."""
    kept: CpuMark = (None, None)
    if not candidate.replicas:
        return Observation(None, None), kept
    holds_gpus = any(replica.gpus for replica in candidate.replicas)
    gpu_values: list[float] = []
    cpu_pcts: list[float] = []
    cpu_seconds: list[float] = []
    cores = 0.0
    missing = False
    for replica in candidate.replicas:
        try:
            runtime = ctx.runtimes.for_kind(replica.kind)
        except NotFound:  # a kind this process runs nothing for: no signal
            return Observation(None, None, unsupported=True), kept
        query = ReplicaUsageQuery(
            handle=replica.handle or "",
            server_id=replica.server_id,
            workload_id=candidate.workload_id,
            command=candidate.command,
            gpus=replica.gpus,
            cpu_cores=replica.cpu_milli / 1000,
        )
        try:
            usage = runtime.replica_usage(query, now)
        except (RuntimeFailure, httpx.HTTPError):  # unreachable or refused: unknown
            missing = True
            continue
        if usage is None:
            return Observation(None, None, unsupported=True), kept
        if usage.no_signal is not None:  # never a signal for it: said why, never culled
            return Observation(None, None, unsupported=True, no_signal_reason=usage.no_signal), kept
        if holds_gpus:
            # The runtime's own per-replica figures, else the server's last reading.
            by_index = {g.index: g for g in usage.gpus} or {
                g.index: g for g in readings.get(replica.server_id, ())
            }
            for gpu in replica.gpus:
                reading = by_index.get(gpu.index)
                if reading is None or reading.utilization_pct is None:
                    missing = True
                else:
                    gpu_values.append(reading.utilization_pct)
            continue
        cores += replica.cpu_milli / 1000
        if usage.cpu_pct is not None:
            cpu_pcts.append(usage.cpu_pct)
        elif usage.cpu_seconds is not None:
            cpu_seconds.append(usage.cpu_seconds)
        else:
            missing = True
    if missing:
        return Observation(None, None), kept
    if holds_gpus:
        return Observation(max(gpu_values) if gpu_values else None, Signal.GPU), kept
    if cpu_pcts and not cpu_seconds:
        return Observation(sum(cpu_pcts) / len(cpu_pcts), Signal.CPU), kept
    if cpu_seconds and not cpu_pcts:
        total = sum(cpu_seconds)
        kept = (total, now)
        if before is None or before.cpu_seconds is None or before.cpu_seen_at is None:
            return Observation(None, None), kept  # the first reading: a rate needs two
        share = cpu_share_pct(before.cpu_seconds, before.cpu_seen_at, total, now, cores)
        return Observation(share, Signal.CPU if share is not None else None), kept
    return Observation(None, None), kept


def _record(ctx: ServiceContext, looked: list[_Looked], now: datetime, tick: CullTick) -> None:
    """One write for the page; each workload in its own savepoint."""
    changed = [
        item
        for item in looked
        if item.decision.action is not Action.NONE or item.after != item.before
    ]
    if not changed:
        return
    with ctx.db.write() as session:
        for item in changed:
            workload_id = item.candidate.workload_id
            try:
                with session.begin_nested():
                    done = _record_one(session, item, now)
            except StaleDataError:
                continue  # it changed since it was read: decided again next tick
            except Exception as exc:
                if not blames_item(exc):
                    raise
                report_item_failure(LOOP, workload_id, exc, "not recorded")
                continue
            if done is Action.STOP:
                tick.stopped.append(workload_id)
            elif done is Action.NOTE:
                warning = (item.decision.reason_code or "").endswith("_warning")
                (tick.warned if warning else tick.noted).append(workload_id)


def _record_one(session: Session, item: _Looked, now: datetime) -> Action:
    """Keep the memory; write the event or the stop. The action taken (NONE when the
    workload is no longer running as it was read)."""
    candidate, decision = item.candidate, item.decision
    if decision.action is Action.STOP:
        row = session.get(WorkloadRow, candidate.workload_id, populate_existing=True)
        if (
            row is None
            or row.status != WorkloadStatus.RUNNING.value
            or row.version != candidate.version
        ):
            return Action.NONE
        release_workload(session, row, reason=decision.reason_code or "culled")
        transition_workload(
            session,
            row,
            WorkloadStatus.STOPPED,
            decision.message,
            now,
            reason_code=decision.reason_code,
            details=dict(decision.details or {}),
        )
        record_audit(
            session,
            SYSTEM_ACTOR,
            "workload.cull",
            "workload",
            row.id,
            now,
            {"name": row.name, "reason": decision.reason_code, **(decision.details or {})},
        )
        return Action.STOP
    if decision.action is Action.NOTE:
        status = WorkloadStatus.RUNNING.value
        if session.get(WorkloadRow, candidate.workload_id) is None:
            return Action.NONE
        insert_workload_events(
            session,
            [
                {
                    "workload_id": candidate.workload_id,
                    "at": now,
                    "from_status": status,
                    "to_status": status,
                    "reason": decision.message,
                    "details": dict(decision.details or {}),
                }
            ],
        )
    culling_store.save_cull_state(session, candidate.workload_id, item.after, now)
    return decision.action
