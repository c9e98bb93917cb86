"""Every server's capacity, GPUs and labels, for refusing at submit and resize what could
never run (``scheduler/feasibility.py``).

A :class:`CapacityIndex` keeps one :class:`ServerView` per server between requests and
re-reads only the servers whose change mark moved since the last read (the mechanism of
the scheduler's snapshot cache, ``snapshot_loader.py``, with a watermark of its own: the
cache's is shared with the workloads it reads). Deleted servers carry no mark and are
found by count. Capacity rarely changes, so a submission usually costs two indexed reads
(the changed servers since the watermark, the count). A stale entry costs at most one
wrong answer on a server added, resized or relabelled in the same instant: the next
request sees it.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from sqlalchemy.orm import Session

from gpuyard.scheduler.snapshot import GpuDevice, ServerView
from gpuyard.services.loops.item_failures import read_isolating
from gpuyard.services.scheduling.snapshot_rows import server_view
from gpuyard.store.snapshot_source import SnapshotSource, begin_snapshot, server_ids_unless


class CapacityIndex:
    """The fleet's servers as the feasibility check reads them. Thread-safe: the API's
    threads and the group commit's writer refresh it concurrently. One per database:
    ``ServiceContext.capacity_index``."""

    def __init__(self) -> None:
        self._source = SnapshotSource(read_isolating)
        self._lock = threading.Lock()
        self._servers: dict[str, ServerView] = {}
        #: The lowest change mark the next refresh must read; None: read every server.
        self._watermark: int | None = None
        self._view: tuple[ServerView, ...] = ()

    def invalidate(self) -> None:
        """Read every server again on the next refresh."""
        with self._lock:
            self._watermark = None

    def servers(self, session: Session) -> tuple[ServerView, ...]:
        """Every server, brought up to date in ``session``. A server whose row cannot be
        read or converted is left out (it holds nothing the check could trust)."""
        with self._lock:
            try:
                return self._refresh(session)
            except BaseException:
                self._watermark = None  # half applied: start over next time
                raise

    def _refresh(self, session: Session) -> tuple[ServerView, ...]:
        mark = begin_snapshot(session)
        since = self._watermark
        if since is None:
            self._servers.clear()
        found = self._source.servers(session, since, set())
        gpus: dict[str, list[GpuDevice]] = defaultdict(list)
        for server_id, index, model, memory, allocated, memory_used in found.gpus:
            gpus[server_id].append(GpuDevice(index, model, memory, allocated, memory_used))
        changed = bool(found.servers or found.unusable) or since is None
        for row in found.servers:
            if row.id in found.unusable:
                continue
            try:
                self._servers[row.id] = server_view(row, gpus.get(row.id, ()))
            except ValueError:  # labels of another shape: left out, as the scheduler does
                self._servers.pop(row.id, None)
        for server_id in found.unusable:
            self._servers.pop(server_id, None)
        if since is not None:
            present = server_ids_unless(session, len(self._servers))
            if present is not None:
                for server_id in [i for i in self._servers if i not in present]:
                    del self._servers[server_id]
                changed = True
        if changed:
            self._view = tuple(self._servers.values())
        self._watermark = mark
        return self._view
