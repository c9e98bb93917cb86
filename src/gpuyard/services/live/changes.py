"""What a live event says, and where the changes come from.

A :class:`ChangeSource` hands the feed each batch of changes committed since its last
call. :class:`DatabaseChanges` is the one source today: it reads the rows whose change
marks (migration 0005, set by triggers whichever process wrote) moved since its
watermark, the way the scheduler's snapshot cache does (``store/snapshot_source.py``).

PostgreSQL marks are transaction ids, which commit out of order: a transaction that
began before the last read may commit a lower mark afterwards. The watermark is
therefore the read snapshot's xmin (every change the read could not see has a mark at
or above it), so a window of recent marks is read again on the next poll; the marks
already sent for rows in that window are remembered, and a row read again at the same
mark is not sent twice. On SQLite writers are serialised and the window is empty. (A
PostgreSQL transaction left open for long widens the window: each poll reads again what
changed since it began, as the scheduler's snapshot cache does.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gpuyard.domain.fleet_records import Server
from gpuyard.domain.workload_records import Workload
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.bus.notices import ChangeBus, Notice
from gpuyard.store.database import Database
from gpuyard.store.live_changes import (
    pending_workload_ids,
    servers_changed_since,
    workloads_changed_since,
)
from gpuyard.store.snapshot_source import begin_snapshot

#: How often the queue's members are read again in full: a pending workload deleted by
#: its owner leaves without a change to read (its row is gone).
QUEUE_RECOUNT_S = 60.0


@dataclass(frozen=True)
class WorkloadChanged:
    """A workload's state after a committed change (status, reason, placement,
    resources...): enough for a page to update its row."""

    workload: Workload


@dataclass(frozen=True)
class ServerChanged:
    """A server's state after a committed change (status, counters, GPUs)."""

    server: Server


@dataclass(frozen=True)
class QueueChanged:
    """Something the queue shows moved: a workload entered or left it, or a waiting
    one changed (its reason, priority...). Readers refetch the queue."""


Change = WorkloadChanged | ServerChanged | QueueChanged


class ChangeSource(Protocol):
    """Where the feed gets committed changes from: the database (:class:`DatabaseChanges`),
    read when the bus says something moved (:class:`BusChanges`)."""

    def start(self) -> None:
        """Remember where the database is now: later polls return what changes after."""

    def poll(self) -> list[Change]:
        """The changes committed since the last call (or since :meth:`start`)."""


class DatabaseChanges:
    """A :class:`ChangeSource` over the change marks (see the module docstring)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self._clock = clock
        self._recounted_at = 0.0
        self._watermark: int | None = None
        #: Marks already sent of rows that may be read again (marks >= the watermark).
        self._sent: dict[tuple[str, str], int] = {}
        #: Workloads in the queue as last seen, to tell when one leaves it.
        self._pending: set[str] = set()

    def start(self) -> None:
        with self.db.read() as session:
            watermark = begin_snapshot(session)
            pending = pending_workload_ids(session)
        self._watermark, self._pending, self._sent = watermark, pending, {}
        self._recounted_at = self._clock()

    def poll(self) -> list[Change]:
        if self._watermark is None:
            self.start()
            return []
        with self.db.read() as session:
            watermark = begin_snapshot(session)
            workloads = workloads_changed_since(session, self._watermark)
            servers = servers_changed_since(session, self._watermark)
            recount = self._clock() - self._recounted_at >= QUEUE_RECOUNT_S
            pending = pending_workload_ids(session) if recount else None
        changes: list[Change] = []
        queue_moved = False
        for workload, mark in workloads:
            if not self._is_new(("workload", workload.id), mark):
                continue
            changes.append(WorkloadChanged(workload))
            was_waiting = workload.id in self._pending
            if workload.status == WorkloadStatus.PENDING.value:
                self._pending.add(workload.id)
                queue_moved = True
            elif was_waiting:
                self._pending.discard(workload.id)
                queue_moved = True
        for server, mark in servers:
            if self._is_new(("server", server.id), mark):
                changes.append(ServerChanged(server))
        if pending is not None:
            self._recounted_at = self._clock()
            queue_moved = queue_moved or bool(self._pending - pending)
            self._pending = pending
        if queue_moved:
            changes.append(QueueChanged())
        self._watermark = watermark
        # Rows below the new watermark are read again only with a new mark.
        self._sent = {key: mark for key, mark in self._sent.items() if mark >= watermark}
        return changes

    def _is_new(self, key: tuple[str, str], mark: int) -> bool:
        if self._sent.get(key) == mark:
            return False
        self._sent[key] = mark
        return True


class BusChanges(DatabaseChanges):
    """:class:`DatabaseChanges`, read when the bus (``services/bus``) announces a commit
    of workloads or servers by any process, this one included: the feed's reader waits
    for a notice instead of polling while the bus is ``live``. The database stays what
    is read, by watermark, so a lost notice only delays an event (the feed reads every
    ``BUS_RECOVERY_POLL_S`` anyway), and a reconnect of the bus reads at once."""

    def __init__(
        self, db: Database, bus: ChangeBus, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(db, clock)
        self.bus = bus
        self._callbacks: list[Callable[[], None]] = []
        bus.add_listener(self._heard)

    @property
    def live(self) -> bool:
        return self.bus.live

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (it must not block) at every notice worth a read."""
        self._callbacks.append(callback)

    def _heard(self, notice: Notice, own: bool) -> None:
        del own  # this process's commits are read the same way
        if notice.kind in ("change", "resync"):
            for callback in self._callbacks:
                callback()
