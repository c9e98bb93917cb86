"""Change marks (migration 0005): every change the scheduler's snapshot reads moves the
mark of the server or workload it belongs to, from any writer; changes it does not read
(health probes, GPU utilisation, container ids) leave the marks alone. On SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from gpuyard.domain.resources import Resources
from gpuyard.store.base import new_id, utcnow
from gpuyard.store.database import Database
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.reservations import release_resources, reserve_resources
from gpuyard.store.snapshot_source import begin_snapshot
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


@pytest.fixture
def rows(db: Database) -> dict[str, str]:
    """A cluster, a server with two GPUs, a user and a pending workload."""
    ids = {"server": new_id(), "workload": new_id(), "user": new_id()}
    with db.write() as session:
        cluster = ClusterRow(name="c", kind="simulated")
        session.add(cluster)
        session.add(UserRow(id=ids["user"], email="u@example.com", password_hash="x", role="user"))
        session.flush()
        server = ServerRow(
            id=ids["server"],
            name="s",
            cluster_id=cluster.id,
            cpu_milli=8000,
            ram_mib=8192,
            storage_mib=0,
            gpu_milli=2000,
        )
        server.gpus = [ServerGpuRow(gpu_index=i, uuid=f"g{i}", model="H100") for i in range(2)]
        session.add(server)
        session.add(
            WorkloadRow(
                id=ids["workload"],
                name="w",
                owner_id=ids["user"],
                image="busybox",
                cpu_milli=1000,
                ram_mib=1024,
                storage_mib=0,
                gpu_milli=1000,
            )
        )
    return ids


def marks(db: Database, ids: dict[str, str]) -> tuple[int, int]:
    with db.read() as session:
        server = session.scalar(select(ServerRow.change_mark).where(ServerRow.id == ids["server"]))
        workload = session.scalar(
            select(WorkloadRow.change_mark).where(WorkloadRow.id == ids["workload"])
        )
    assert server is not None
    assert workload is not None
    return server, workload


def _allocation(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "id": "a1",
        "workload_id": ids["workload"],
        "replica": 0,
        "server_id": ids["server"],
        "cpu_milli": 1000,
        "ram_mib": 1024,
        "storage_mib": 0,
        "gpu_milli": 1000,
        "gpu_allocation": [[0, 1000]],
        "created_at": utcnow(),
    }


Change = Callable[[Session, dict[str, str]], object]
S, W = ServerRow, WorkloadRow
_one_gpu = Resources(1000, 1024, 0, 1000)

# (what, the change, moves the server's mark, moves the workload's mark)
CASES: list[tuple[str, Change, bool, bool]] = [
    (
        "reserve",
        lambda s, i: reserve_resources(s, i["server"], _one_gpu, [(1, 1000)]),
        True,
        False,
    ),
    (
        "status",
        lambda s, i: s.execute(update(S).where(S.id == i["server"]).values(status="draining")),
        True,
        False,
    ),
    (
        "labels (ORM)",
        lambda s, i: setattr(s.get(S, i["server"]), "labels", {"zone": "b"}),
        True,
        False,
    ),
    (
        "capacity",
        lambda s, i: s.execute(update(S).where(S.id == i["server"]).values(cpu_milli=16000)),
        True,
        False,
    ),
    (
        "one GPU's milli",
        lambda s, i: s.execute(
            update(ServerGpuRow)
            .where(ServerGpuRow.server_id == i["server"], ServerGpuRow.gpu_index == 0)
            .values(allocated_milli=500)
        ),
        True,
        False,
    ),
    (
        "a GPU removed",
        lambda s, i: s.execute(
            delete(ServerGpuRow).where(
                ServerGpuRow.server_id == i["server"], ServerGpuRow.gpu_index == 1
            )
        ),
        True,
        False,
    ),
    (
        "health probe bookkeeping",
        lambda s, i: s.execute(
            update(S).where(S.id == i["server"]).values(missed_probes=2, last_seen_at=utcnow())
        ),
        False,
        False,
    ),
    (
        "GPU utilisation",
        lambda s, i: s.execute(
            update(ServerGpuRow)
            .where(ServerGpuRow.server_id == i["server"])
            .values(utilization_pct=42.0)
        ),
        False,
        False,
    ),
    (
        "allocation inserted",
        lambda s, i: s.execute(insert(AllocationRow), [_allocation(i)]),
        False,
        True,
    ),
    (
        "workload priority (ORM, versioned)",
        lambda s, i: setattr(s.get(W, i["workload"]), "priority", 5),
        False,
        True,
    ),
    (
        "workload reason (Core, no version bump)",
        lambda s, i: s.execute(update(W).where(W.id == i["workload"]).values(reason="why")),
        False,
        True,
    ),
]


@pytest.mark.parametrize(("what", "change", "server_moves", "workload_moves"), CASES)
def test_a_change_moves_exactly_the_marks_it_should(
    db: Database,
    rows: dict[str, str],
    what: str,
    change: Change,
    server_moves: bool,
    workload_moves: bool,
) -> None:
    server_before, workload_before = marks(db, rows)
    with db.write() as session:
        change(session, rows)
    server_after, workload_after = marks(db, rows)
    assert (server_after > server_before) is server_moves, what
    assert (workload_after > workload_before) is workload_moves, what
    assert server_after >= server_before
    assert workload_after >= workload_before


def test_allocation_release_and_container_id(db: Database, rows: dict[str, str]) -> None:
    """Releasing moves both marks (the counters and the workload's reservation); recording
    the container that runs a replica moves neither."""
    with db.write() as session:
        reserve_resources(session, rows["server"], _one_gpu, [(0, 1000)])
        session.execute(insert(AllocationRow), [_allocation(rows)])
    server_before, workload_before = marks(db, rows)
    with db.write() as session:
        session.execute(
            update(AllocationRow).where(AllocationRow.id == "a1").values(container_id="c1")
        )
    assert marks(db, rows) == (server_before, workload_before)
    with db.write() as session:
        release_resources(session, rows["server"], _one_gpu, [(0, 1000)])
        session.execute(delete(AllocationRow).where(AllocationRow.id == "a1"))
    server_after, workload_after = marks(db, rows)
    assert server_after > server_before
    assert workload_after > workload_before


def test_new_rows_are_marked_after_what_a_reader_saw(db: Database, rows: dict[str, str]) -> None:
    """A row inserted after a reader's snapshot gets a mark at or above the reader's
    watermark (what the snapshot cache relies on to find it)."""
    with db.read() as session:
        watermark = begin_snapshot(session)
    with db.write() as session:
        cluster_id = session.scalar(select(ClusterRow.id))
        session.add(
            ServerRow(name="late", cluster_id=cluster_id, cpu_milli=1, ram_mib=1, storage_mib=0)
        )
    with db.read() as session:
        late = session.scalar(select(ServerRow.change_mark).where(ServerRow.name == "late"))
    assert late is not None
    assert late >= watermark


def test_a_refresh_reads_one_snapshot(db: Database) -> None:
    """On PostgreSQL the refresh's statements share one REPEATABLE READ snapshot (so the
    servers' counters and the reservations it reads agree)."""
    with db.read() as session:
        begin_snapshot(session)
        level = session.execute(text("SHOW transaction_isolation")) if not db.is_sqlite else None
        if level is not None:
            assert level.scalar_one() == "repeatable read"
