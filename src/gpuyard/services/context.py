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
from gpuyard.runtimes.registry import RuntimeRegistry, default_registry
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.services.fleet.agents import AgentPool
from gpuyard.services.fleet.kube_clients import KubeClients
from gpuyard.services.group_commit import GroupCommit
from gpuyard.settings import Settings
from gpuyard.store.database import Database

if TYPE_CHECKING:
    from gpuyard.services.scheduling.snapshot_loader import SnapshotCache

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Wakeup:
    """Hints a background loop to run now instead of at its next interval."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
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
    scheduler_wakeup: Wakeup = field(default_factory=Wakeup)
    #: Encrypts secrets at rest (agent tokens, kubeconfigs) with a key from secret_key.
    secret_box: SecretBox = field(init=False)
    login_throttle: LoginThrottle = field(init=False)
    #: Recently resolved bearer tokens (cleared by every change to accounts or credentials).
    callers: CallerCache = field(init=False)
    #: Clients of docker servers' agents (the docker runtime's connections).
    agents: AgentPool = field(init=False)
    #: API clients of kubernetes clusters (the kubernetes runtime's connections).
    kube_clients: KubeClients = field(init=False)
    #: The runtime of each cluster kind: services ask it, never test a server's kind.
    runtimes: RuntimeRegistry = field(init=False)
    #: Hints the starter loop that docker replicas were just scheduled.
    starter_wakeup: Wakeup = field(default_factory=Wakeup)
    #: Hints the reconcile loop (a server came back online).
    reconcile_wakeup: Wakeup = field(default_factory=Wakeup)
    #: Wakes the pool loop: a pool was created, resized or a warm container claimed.
    pool_wakeup: Wakeup = field(default_factory=Wakeup)
    #: Group commits by kind of write (services.group_commit), made on first use.
    group_commits: dict[str, GroupCommit[Any, Any]] = field(default_factory=dict)
    #: The scheduler's view of ``db``, kept between cycles (scheduling loop and GET /queue).
    snapshot_cache: SnapshotCache = field(init=False)
    #: What the engine derives from the snapshot cache's views, kept between cycles.
    engine_cache: EngineCache = field(default_factory=EngineCache)
    #: This process's name as a lease holder.
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        s = self.settings
        self.secret_box = SecretBox(self.secret_key, s.previous_secret_key_list)
        self.login_throttle = LoginThrottle(
            s.login_ip_max_attempts,
            s.login_ip_window_s,
            s.login_account_max_failures,
            s.login_account_window_s,
            s.login_account_total_max_failures,
            s.login_account_total_window_s,
        )
        self.agents = AgentPool(self.db, self.secret_box)
        self.kube_clients = KubeClients(self.db, self.secret_box)
        self.runtimes = default_registry(
            self.agents.client_for, self.kube_clients, s.kube_default_namespace
        )
        self.callers = CallerCache(s.caller_cache_s)
        # Imported here: the loader reports bad rows through services.loops.item_failures,
        # which imports this module.
        from gpuyard.services.scheduling.snapshot_loader import SnapshotCache

        self.snapshot_cache = SnapshotCache()

    def now(self) -> datetime:
        return self.clock()
