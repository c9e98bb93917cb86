"""The database itself refuses oversubscription, whatever the Python code does."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from gpuyard.domain.resources import Resources
from gpuyard.store.database import Database
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.reservations import ReservationConflict, release_resources, reserve_resources


@pytest.fixture
def seeded(db: Database) -> Database:
    """One server (4 cpu, 4 GiB, two GPUs) in a simulated cluster."""
    database = db
    with database.write() as session:
        session.add(ClusterRow(id="c1", name="c1", kind="simulated"))
        session.flush()
        server = ServerRow(
            id="s1",
            name="s1",
            cluster_id="c1",
            cpu_milli=4000,
            ram_mib=4096,
            storage_mib=0,
            gpu_milli=2000,
        )
        server.gpus = [ServerGpuRow(gpu_index=i, uuid=f"u{i}", model="H100") for i in range(2)]
        session.add(server)
    return database


def allocated(db: Database) -> tuple[int, int, list[int]]:
    with db.read() as session:
        server = session.get(ServerRow, "s1")
        assert server is not None
        return (
            server.alloc_cpu_milli,
            server.alloc_gpu_milli,
            [g.allocated_milli for g in server.gpus],
        )


def test_reserve_within_capacity_then_refuse_beyond(seeded: Database) -> None:
    db = seeded
    with db.write() as session:
        reserve_resources(session, "s1", Resources(3000, 1024, 0, 1000), [(0, 1000)])
    with pytest.raises(ReservationConflict), db.write() as session:
        reserve_resources(session, "s1", Resources(2000, 0, 0, 0), [])
    with pytest.raises(ReservationConflict), db.write() as session:
        reserve_resources(session, "s1", Resources(0, 0, 0, 1000), [(0, 1000)])  # GPU 0 taken
    assert allocated(db) == (3000, 1000, [1000, 0])


def test_fractional_shares_stop_at_one_gpu(seeded: Database) -> None:
    db = seeded
    for _ in range(3):
        with db.write() as session:
            reserve_resources(session, "s1", Resources(0, 0, 0, 300), [(1, 300)])
    with pytest.raises(ReservationConflict), db.write() as session:
        reserve_resources(session, "s1", Resources(0, 0, 0, 200), [(1, 200)])
    assert allocated(db) == (0, 900, [0, 900])
    with db.write() as session:
        release_resources(session, "s1", Resources(0, 0, 0, 300), [(1, 300)])
    assert allocated(db) == (0, 600, [0, 600])


def test_check_constraint_backs_up_a_buggy_raw_update(seeded: Database) -> None:
    db = seeded
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(update(ServerRow).where(ServerRow.id == "s1").values(alloc_cpu_milli=5000))
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(
            update(ServerGpuRow).where(ServerGpuRow.gpu_index == 0).values(allocated_milli=1001)
        )
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(update(ServerRow).where(ServerRow.id == "s1").values(alloc_ram_mib=-1))
    assert allocated(db) == (0, 0, [0, 0])
