"""Loading the scheduler's snapshot: in full once, then only the rows that changed.

A :class:`SnapshotCache` keeps the servers (with their GPUs) and the schedulable workloads
(with their reservations) between cycles. Triggers set ``change_mark`` on a server when its
row or its GPUs change and on a workload when its row or its allocations change (migration
0005); a refresh reads, in one consistent read transaction, only the rows marked since the
previous one, plus the small tables (clusters, team quotas) in full. The reading itself,
the watermark and every dialect difference are the store's (``store/snapshot_source.py``);
this module keeps the cache and its policy, and turns the rows into the scheduler's frozen
types (``snapshot_rows.py``) directly: ORM objects for tens of thousands of rows would
dominate a full load.

Correctness never depends on the cache. Every admission is applied with compare-and-set
updates (server and GPU counters, workload versions), so a stale cache costs at most a
failed admission: the scheduling service then reports the servers and workloads involved
(:meth:`SnapshotCache.note_conflicts`), which are re-read, or everything is when conflicts
persist, and the cache reloads in full every ``full_reload_s`` seconds anyway.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.log import get_logger
from gpuyard.scheduler.fairshare import QueueNode
from gpuyard.scheduler.snapshot import (
    PERSONAL_QUOTA_PREFIX,
    ClusterSnapshot,
    GpuDevice,
    PendingWorkload,
    RunningReplica,
    ServerView,
    TeamQuota,
)
from gpuyard.services.loops.item_failures import read_isolating, report_item_failure
from gpuyard.services.scheduling.quota_tree import is_placed, queue_node
from gpuyard.services.scheduling.snapshot_rows import (
    CachedWorkload,
    QueueState,
    SetAside,
    WorkloadSeen,
    cached_workload,
    server_view,
)
from gpuyard.settings import Settings
from gpuyard.store import team_usage
from gpuyard.store.snapshot_source import (
    SCHEDULABLE,
    SnapshotSource,
    admin_user_ids,
    begin_snapshot,
    clusters_of_kinds,
    schedulable_ids_unless,
    server_ids_unless,
    team_quota_rows,
)
from gpuyard.store.teams import all_teams

log = get_logger(__name__)

#: Cycles in a row with conflicts after which the cache reloads everything. One conflict
#: has only the rows involved re-read: racing deciders conflict legitimately, and the next
#: refresh sees the winner's commit anyway; conflicts that persist suggest the cache
#: missed something.
CONFLICT_CYCLES_BEFORE_RELOAD = 3
#: The scheduler's cache also reloads everything this often, whatever happened.
FULL_RELOAD_S = 60.0
_LOOP = "scheduler"


@dataclass(frozen=True)
class RefreshStats:
    """What the last refresh read: for tests, logs and benchmarks."""

    full: bool
    servers_read: int
    workloads_read: int
    seconds: float


def load_queue_state(session: Session, container_kinds: Collection[str]) -> QueueState:
    """Read servers, reservations, pending work and quotas in one transaction, in full
    (``container_kinds``: as for ``SnapshotCache.refresh``)."""
    return SnapshotCache().refresh(session, container_kinds)


class SnapshotCache:
    """The scheduler's view of the database, kept between cycles and refreshed by what
    changed. Thread-safe: the scheduling loop and GET /queue may refresh it concurrently.
    One per database: ``ServiceContext.snapshot_cache``."""

    def __init__(
        self,
        full_reload_s: float = FULL_RELOAD_S,
        clock: Callable[[], float] = time.monotonic,
        whole_gpu_kinds: Collection[str] = (),
        personal_quota: PersonalQuota | None = None,
        usage_half_life_s: float | None = None,
    ) -> None:
        self.full_reload_s = full_reload_s
        #: Cluster kinds whose runtime hands out whole GPUs only (their servers take no
        #: GPU shares: ``ServerView.whole_gpus_only``).
        self.whole_gpu_kinds = frozenset(whole_gpu_kinds)
        #: The quota of each user in no team (admins exempt); None: unlimited.
        self.personal_quota = personal_quota
        #: Time-based fair share (``GPUYARD_FAIRSHARE_HALF_LIFE_S``): the teams' decayed
        #: usage is read with the tree; None: off.
        self.usage_half_life_s = usage_half_life_s
        self._source = SnapshotSource(read_isolating)
        self._clock = clock
        self._lock = threading.Lock()
        self._servers: dict[str, ServerView] = {}
        self._port_ranges: dict[str, tuple[int, int] | None] = {}
        self._workloads: dict[str, CachedWorkload] = {}
        self._seen: dict[str, WorkloadSeen] = {}
        #: Workloads with queue entries, in the order they were read.
        self._wanting: dict[str, None] = {}
        self._team_usage: dict[str, Resources] = defaultdict(Resources)
        #: The lowest change mark the next refresh must read; None: reload everything.
        self._watermark: int | None = None
        self._loaded_at = 0.0
        self._recheck_servers: set[str] = set()
        self._recheck_workloads: set[str] = set()
        #: Rows left out because they could not be read or converted (one bad row must
        #: not fail the snapshot of every other): workloads for the scheduling service to
        #: fail, servers to stay out of placement until they read again.
        self._unusable: dict[str, SetAside] = {}
        self._unusable_servers: set[str] = set()
        self._servers_view: tuple[ServerView, ...] = ()
        self._running_view: tuple[RunningReplica, ...] = ()
        self.last_refresh: RefreshStats | None = None
        #: Cycles in a row whose decisions met conflicts (see note_conflicts).
        self.conflict_cycles = 0

    def invalidate(self) -> None:
        """Reload everything on the next refresh."""
        with self._lock:
            self._watermark = None

    def recheck(self, server_ids: Iterable[str], workload_ids: Iterable[str]) -> None:
        """Re-read these rows on the next refresh even if their marks did not move (an
        admission on them failed its compare-and-set: what the cache held was stale)."""
        with self._lock:
            self._recheck_servers.update(server_ids)
            self._recheck_workloads.update(workload_ids)

    def note_conflicts(self, server_ids: set[str], workload_ids: set[str]) -> None:
        """After a cycle: the rows behind decisions that failed their compare-and-set
        (none for a clean cycle). They are re-read next cycle; after
        :data:`CONFLICT_CYCLES_BEFORE_RELOAD` such cycles in a row, everything is."""
        if not workload_ids:
            self.conflict_cycles = 0
            return
        self.recheck(server_ids, workload_ids)
        self.conflict_cycles += 1
        if self.conflict_cycles >= CONFLICT_CYCLES_BEFORE_RELOAD:
            log.info("snapshot_cache_reload", conflict_cycles=self.conflict_cycles)
            self.invalidate()
            self.conflict_cycles = 0

    def refresh(self, session: Session, container_kinds: Collection[str]) -> QueueState:
        """Bring the cache up to date in ``session`` (a fresh read session) and return what
        a cycle decides over. ``container_kinds``: the cluster kinds whose runtime runs
        containers (``ctx.runtimes.kinds_where(runs_containers)``); their servers get host
        ports and a starter instead of ``running`` at once."""
        with self._lock:
            started = self._clock()
            full = self._watermark is None or started - self._loaded_at >= self.full_reload_s
            try:
                state, servers_read, workloads_read = self._refresh(
                    session, full, started, container_kinds
                )
            except BaseException:
                self._watermark = None  # half applied: start over next time
                raise
            self.last_refresh = RefreshStats(
                full, servers_read, workloads_read, self._clock() - started
            )
            return state

    def _refresh(
        self, session: Session, full: bool, started: float, container_kinds: Collection[str]
    ) -> tuple[QueueState, int, int]:
        mark = begin_snapshot(session)
        if full:
            self._clear()
            self._loaded_at = started
        since = None if full else self._watermark
        servers_read = self._read_servers(session, since)
        workloads_read = self._read_workloads(session, since)
        servers_dropped, workloads_dropped = (
            (False, False) if full else self._drop_vanished(session)
        )
        if full or servers_read or servers_dropped:
            self._servers_view = tuple(self._servers.values())
        if full or workloads_read or workloads_dropped:
            self._running_view = tuple(
                itertools.chain.from_iterable(e.running for e in self._workloads.values())
            )
        state = self._state(session, container_kinds)
        self._watermark = mark
        self._recheck_servers.clear()
        self._recheck_workloads.clear()
        return state, servers_read, workloads_read

    def _clear(self) -> None:
        self._servers.clear()
        self._port_ranges.clear()
        self._workloads.clear()
        self._seen.clear()
        self._wanting.clear()
        self._team_usage.clear()
        self._unusable.clear()
        self._unusable_servers.clear()

    # -- servers ---------------------------------------------------------------------
    def _read_servers(self, session: Session, since: int | None) -> int:
        """Servers whose mark is ``>= since`` (all when None) and those to recheck."""
        found = self._source.servers(session, since, self._recheck_servers)
        unusable = found.unusable
        gpus: dict[str, list[GpuDevice]] = defaultdict(list)
        for server_id, index, model, memory, allocated, memory_used in found.gpus:
            gpus[server_id].append(GpuDevice(index, model, memory, allocated, memory_used))
        whole = (
            clusters_of_kinds(session, self.whole_gpu_kinds)
            if found.servers and self.whole_gpu_kinds
            else set()
        )
        for row in found.servers:
            if unusable and row.id in unusable:
                continue
            try:
                view = server_view(row, gpus.get(row.id, ()), row.cluster_id in whole)
            except Exception as exc:  # its labels, say: left out, the others go on
                unusable[row.id] = exc
                continue
            if self._unusable_servers:
                self._unusable_servers.discard(row.id)
            self._servers[row.id] = view
            low, high = row.host_port_min, row.host_port_max
            self._port_ranges[row.id] = (
                (low, high) if low is not None and high is not None else None
            )
        for server_id, error in unusable.items():
            self._servers.pop(server_id, None)
            self._port_ranges.pop(server_id, None)
            self._unusable_servers.add(server_id)
            report_item_failure(_LOOP, f"server {server_id}", error, "left out of the snapshot")
        return len(found.servers) + len(unusable)

    # -- workloads -------------------------------------------------------------------
    def _read_workloads(self, session: Session, since: int | None) -> int:
        """Schedulable workloads (all when ``since`` is None) or every workload marked
        since then, whatever its status: one that finished must leave the cache."""
        found = self._source.workloads(session, since, self._recheck_workloads)
        # Rows that cannot be read, or whose allocations cannot: set aside (SetAside).
        rows, allocations, unreadable = found.workloads, found.allocations, found.unreadable
        for row in rows:
            if since is not None:
                self._forget_workload(row.id)
            if self._unusable:
                self._unusable.pop(row.id, None)
            if row.status in SCHEDULABLE:
                error = unreadable.pop(row.id, None) if unreadable else None
                if error is None:
                    try:
                        entry = cached_workload(row, allocations.get(row.id, ()))
                    except Exception as exc:  # its node selector, say: set aside
                        error = exc
                    else:
                        self._remember_workload(row.id, entry)
                        continue
                self._unusable[row.id] = SetAside(row.status, error)
        if unreadable:  # not even their rows could be read: their status alone, if it can
            statuses = self._source.statuses(session, list(unreadable))
            for workload_id, error in unreadable.items():
                self._forget_workload(workload_id)
                status = statuses.get(workload_id)
                if status is None or status in SCHEDULABLE:
                    self._unusable[workload_id] = SetAside(status, error)
        return len(rows) + len(unreadable)

    def _forget_workload(self, workload_id: str) -> None:
        old = self._workloads.pop(workload_id, None)
        if old is None:
            return
        del self._seen[workload_id]
        self._wanting.pop(workload_id, None)
        if old.team_id:
            self._team_usage[old.team_id] = self._team_usage[old.team_id] - old.usage

    def _remember_workload(self, workload_id: str, entry: CachedWorkload) -> None:
        self._workloads[workload_id] = entry
        self._seen[workload_id] = entry.seen
        if entry.pending:
            self._wanting[workload_id] = None
        if entry.team_id:
            self._team_usage[entry.team_id] = self._team_usage[entry.team_id] + entry.usage

    def _drop_vanished(self, session: Session) -> tuple[bool, bool]:
        """Deleted rows carry no mark: find them by count, then by id (rare). Returns
        whether servers, workloads were dropped."""
        servers_gone: list[str] = []
        present = server_ids_unless(session, len(self._servers) + len(self._unusable_servers))
        if present is not None:
            servers_gone = [i for i in self._servers if i not in present]
            for server_id in servers_gone:
                del self._servers[server_id]
                self._port_ranges.pop(server_id, None)
            self._unusable_servers &= present
        workloads_gone: list[str] = []
        present = schedulable_ids_unless(session, len(self._workloads) + len(self._unusable))
        if present is not None:
            workloads_gone = [i for i in self._workloads if i not in present]
            for workload_id in workloads_gone:
                self._forget_workload(workload_id)
            for workload_id in [i for i in self._unusable if i not in present]:
                del self._unusable[workload_id]  # failed meanwhile, or gone
        return bool(servers_gone), bool(workloads_gone)

    # -- the result ------------------------------------------------------------------
    def _state(self, session: Session, container_kinds: Collection[str]) -> QueueState:
        docker_clusters = clusters_of_kinds(session, container_kinds)
        docker_servers = (
            {
                server_id: self._port_ranges.get(server_id)
                for server_id, view in self._servers.items()
                if view.cluster_id in docker_clusters
            }
            if docker_clusters
            else {}
        )
        pending = [p for wid in self._wanting for p in self._workloads[wid].pending]
        return QueueState(
            snapshot=ClusterSnapshot(
                servers=self._servers_view,
                running=self._running_view,
                quotas=_quotas(session, self._team_usage, pending, self.personal_quota),
                teams=_quota_tree(session, self.usage_half_life_s),
                usage_half_life_s=self.usage_half_life_s,
            ),
            pending=pending,
            # A copy: the cache changes on the next refresh while a cycle still applies.
            seen=dict(self._seen),
            docker_servers=docker_servers,
            set_aside=dict(self._unusable),
        )


def _quota_tree(session: Session, usage_half_life_s: float | None = None) -> dict[str, QueueNode]:
    """Every team as a node of the quota tree, once any team has a place in it or
    time-based fair share is on (``usage_half_life_s``: then with its decayed usage);
    empty otherwise, so a fleet without the tree keeps ordering teams by their quota's
    dominant share alone."""
    teams = all_teams(session)
    if usage_half_life_s is None:
        if not any(is_placed(t) for t in teams):
            return {}
        return {t.id: queue_node(t) for t in teams}
    history = team_usage.decayed_usage(session)
    return {
        t.id: queue_node(t, history=history[t.id].history if t.id in history else None)
        for t in teams
    }


@dataclass(frozen=True)
class PersonalQuota:
    """The quota of each user in no team, in stored units (None: that dimension is
    unlimited): settings ``teamless_quota_*``. Admins are exempt."""

    cpu_milli: int | None = None
    ram_mib: int | None = None
    gpu_milli: int | None = None


def personal_quota(settings: Settings) -> PersonalQuota | None:
    """The quota of users in no team from the settings; None when none is set."""
    cpu, ram, gpu = (
        settings.teamless_quota_cpu,
        settings.teamless_quota_ram_gb,
        settings.teamless_quota_gpu,
    )
    if cpu is None and ram is None and gpu is None:
        return None
    return PersonalQuota(
        cpu_milli=None if cpu is None else round(cpu * 1000),
        ram_mib=None if ram is None else round(ram * MIB_PER_GB),
        gpu_milli=None if gpu is None else round(gpu * GPU_MILLI),
    )


def _quotas(
    session: Session,
    used: dict[str, Resources],
    pending: Iterable[PendingWorkload],
    personal: PersonalQuota | None,
) -> dict[str, TeamQuota]:
    """Every team's quota, and, with ``personal``, one for each user in no team who holds
    or wants resources (admins exempt)."""
    quotas = {
        team_id: TeamQuota(
            team_id=team_id,
            used=used.get(team_id, Resources()),
            cpu_milli=cpu,
            ram_mib=ram,
            gpu_milli=gpu,
        )
        for team_id, cpu, ram, gpu in team_quota_rows(session)
    }
    if personal is None:
        return quotas
    holders = {
        h for h, u in used.items() if h.startswith(PERSONAL_QUOTA_PREFIX) and not u.is_zero()
    }
    holders.update(
        p.team_id
        for p in pending
        if p.team_id is not None and p.team_id.startswith(PERSONAL_QUOTA_PREFIX)
    )
    if not holders:
        return quotas
    exempt = {PERSONAL_QUOTA_PREFIX + user_id for user_id in admin_user_ids(session)}
    for holder in holders - exempt:
        quotas[holder] = TeamQuota(
            team_id=holder,
            used=used.get(holder, Resources()),
            cpu_milli=personal.cpu_milli,
            ram_mib=personal.ram_mib,
            gpu_milli=personal.gpu_milli,
        )
    return quotas
