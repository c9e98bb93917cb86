"""What every service needs: settings, database, clock, the scheduler's wake-up and
caches, the secret box, the login throttle and the runtimes by cluster kind."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gpuyard.auth.caller_cache import CallerCache
from gpuyard.auth.encryption import SecretBox
from gpuyard.auth.login_throttle import LoginThrottle
from gpuyard.runtimes.registry import RuntimeRegistry, default_registry, whole_gpus_only
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.services.bus.build import build_bus, build_login_throttle
from gpuyard.services.bus.notices import ChangeBus, Notice
from gpuyard.services.bus.shared_throttle import SharedLoginThrottle
from gpuyard.services.fleet.agents import AgentPool
from gpuyard.services.fleet.kube_clients import KubeClients
from gpuyard.services.group_commit import GroupCommit
from gpuyard.services.metrics.instruments import ProcessMetrics
from gpuyard.settings import Settings
from gpuyard.store.database import Database

if TYPE_CHECKING:
    from gpuyard.services.scheduling.capacity_index import CapacityIndex
    from gpuyard.services.scheduling.snapshot_loader import SnapshotCache

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Wakeup:
    """Hints a background loop to run now instead of at its next interval: in this
    process, and through ``announce`` (the bus) in the others."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._event = threading.Event()
        #: Called by :meth:`notify` with the loop's name (the bus's publish), if set.
        self.announce: Callable[[str], None] | None = None

    def notify(self) -> None:
        """Wake the loop here and in every process on the bus (call it after the commit)."""
        self._event.set()
        if self.announce is not None:
            self.announce(self.name)

    def notify_here(self) -> None:
        """Wake the loop in this process only (another process's notice)."""
        self._event.set()

    def wait(self, timeout: float) -> bool:
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    secret_key: str
    clock: Clock = system_clock
    scheduler_wakeup: Wakeup = field(default_factory=lambda: Wakeup("scheduler"))
    #: Encrypts secrets at rest (agent tokens, kubeconfigs) with a key from secret_key.
    secret_box: SecretBox = field(init=False)
    login_throttle: LoginThrottle | SharedLoginThrottle = field(init=False)
    #: Recently resolved bearer tokens (cleared by every change to accounts or credentials).
    callers: CallerCache = field(init=False)
    #: Clients of docker servers' agents (the docker runtime's connections).
    agents: AgentPool = field(init=False)
    #: API clients of kubernetes clusters (the kubernetes runtime's connections).
    kube_clients: KubeClients = field(init=False)
    #: The runtime of each cluster kind: services ask it, never test a server's kind.
    runtimes: RuntimeRegistry = field(init=False)
    #: Hints the starter loop that docker replicas were just scheduled.
    starter_wakeup: Wakeup = field(default_factory=lambda: Wakeup("starter"))
    #: Hints the reconcile loop (a server came back online).
    reconcile_wakeup: Wakeup = field(default_factory=lambda: Wakeup("reconcile"))
    #: Wakes the pool loop: a pool was created, resized or a warm container claimed.
    pool_wakeup: Wakeup = field(default_factory=lambda: Wakeup("pools"))
    #: Group commits by kind of write (services.group_commit), made on first use.
    group_commits: dict[str, GroupCommit[Any, Any]] = field(default_factory=dict)
    #: The scheduler's view of ``db``, kept between cycles (scheduling loop and GET /queue).
    snapshot_cache: SnapshotCache = field(init=False)
    #: Every server's capacity, GPUs and labels: submit and resize refuse what no server
    #: could ever hold (services/scheduling/capacity_index.py).
    capacity_index: CapacityIndex = field(init=False)
    #: What the engine derives from the snapshot cache's views, kept between cycles.
    engine_cache: EngineCache = field(default_factory=EngineCache)
    #: This process's name as a lease holder and as a sender on the bus.
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Notices to and from the other processes on the database (services/bus): built
    #: here, started by the process that serves or runs loops (``bus.start()``).
    bus: ChangeBus = field(init=False)
    #: This process's Prometheus registry: its counters and histograms, and collectors
    #: that read the fleet and the bus at scrape time (services/metrics).
    metrics: ProcessMetrics = field(default_factory=ProcessMetrics)

    def __post_init__(self) -> None:
        s = self.settings
        self.secret_box = SecretBox(self.secret_key, s.previous_secret_key_list)
        self.bus = build_bus(s, self.db, self.instance_id)
        self.login_throttle = build_login_throttle(
            s,
            self.bus,
            LoginThrottle(
                s.login_ip_max_attempts,
                s.login_ip_window_s,
                s.login_account_max_failures,
                s.login_account_window_s,
                s.login_account_total_max_failures,
                s.login_account_total_window_s,
            ),
        )
        self.agents = AgentPool(self.db, self.secret_box)
        self.kube_clients = KubeClients(self.db, self.secret_box)
        self.runtimes = default_registry(
            self.agents.client_for, self.kube_clients, s.kube_default_namespace
        )
        self.callers = CallerCache(s.caller_cache_s)
        self._join_bus()
        # Imported here: the loader reports bad rows through services.loops.item_failures,
        # which imports this module.
        from gpuyard.services.scheduling.capacity_index import CapacityIndex
        from gpuyard.services.scheduling.snapshot_loader import SnapshotCache, personal_quota

        self.snapshot_cache = SnapshotCache(
            whole_gpu_kinds=self.runtimes.kinds_where(whole_gpus_only),
            personal_quota=personal_quota(s),
            usage_half_life_s=s.fairshare_half_life_s,
        )
        self.capacity_index = CapacityIndex()
        self._register_collectors()

    def _register_collectors(self) -> None:
        # Imported here: the fleet collector reads through services that import this module.
        from gpuyard.services.metrics.bus import BusCollector
        from gpuyard.services.metrics.fleet import FleetCollector

        self.metrics.registry.register(BusCollector(self.bus))
        if self.settings.metrics_fleet:
            self.metrics.registry.register(FleetCollector(self))

    def now(self) -> datetime:
        return self.clock()

    @property
    def wakeups(self) -> dict[str, Wakeup]:
        """The loops' wake-ups by loop name."""
        return {
            w.name: w
            for w in (self.scheduler_wakeup, self.starter_wakeup, self.reconcile_wakeup,
                      self.pool_wakeup)
        }  # fmt: skip

    def _join_bus(self) -> None:
        """Announce this process's wake-ups, revocations and commits of workloads and
        servers on the bus, and act on the other processes' notices."""
        bus = self.bus
        for wakeup in self.wakeups.values():
            wakeup.announce = lambda name: bus.publish("wake", name)
        # Synchronous: a revocation answered here is refused by every process next.
        self.callers.announce = lambda: bus.publish_now("callers")
        self.db.on_commit(self._committed)
        bus.add_listener(self._heard)

    def _committed(self, tables: frozenset[str]) -> None:
        for table in sorted(tables):
            self.bus.publish("change", table)

    def _heard(self, notice: Notice, own: bool) -> None:
        if own:
            return  # acted on here already
        if notice.kind == "wake":
            found = self.wakeups.get(notice.id)
            if found is not None:
                found.notify_here()
        elif notice.kind == "change":
            self.scheduler_wakeup.notify_here()  # what the change watch did when polling
        elif notice.kind == "callers":
            self.callers.clear_here()
        elif notice.kind == "resync":  # notices may have been lost: act as if all came
            for wakeup in self.wakeups.values():
                wakeup.notify_here()
            self.callers.clear_here()
