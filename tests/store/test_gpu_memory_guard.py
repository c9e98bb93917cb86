"""The database keeps GPU memory per device exact (issue 21): concurrent reserves and
releases of shares that reserve memory never put a device over its memory or over 1000
milli, and the counters always equal what the successful reservations hold."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from gpuyard.domain.fleet_records import Gpu
from gpuyard.domain.resources import Resources
from gpuyard.store.database import Database
from gpuyard.store.fleet import set_server_capacity
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.reservations import ReservationConflict, release_resources, reserve_resources

GB = 1024
#: Device 0 has 80 GB, device 1 has 24 GB.
MEMORY = (80 * GB, 24 * GB)


@pytest.fixture
def seeded(db: Database) -> Database:
    with db.write() as session:
        session.add(ClusterRow(id="c1", name="c1", kind="simulated"))
        session.flush()
        server = ServerRow(
            id="s1",
            name="s1",
            cluster_id="c1",
            cpu_milli=1_000_000,
            ram_mib=1_000_000,
            storage_mib=0,
            gpu_milli=2000,
        )
        server.gpus = [
            ServerGpuRow(gpu_index=i, uuid=f"u{i}", model="H100", memory_mib=memory)
            for i, memory in enumerate(MEMORY)
        ]
        session.add(server)
    return db


def devices(db: Database) -> list[tuple[int, int]]:
    """(allocated milli, allocated memory) per device."""
    with db.read() as session:
        server = session.get(ServerRow, "s1")
        assert server is not None
        return [(g.allocated_milli, g.allocated_memory_mib) for g in server.gpus]


def share(milli: int, memory_gb: int) -> Resources:
    return Resources(100, 0, 0, milli, memory_gb * GB)


def test_memory_is_reserved_within_the_device_then_refused_beyond(seeded: Database) -> None:
    db = seeded
    with db.write() as session:
        reserve_resources(session, "s1", share(100, 50), [(0, 100)])
        reserve_resources(session, "s1", share(100, 30), [(0, 100)])
    with pytest.raises(ReservationConflict, match="short of memory"), db.write() as session:
        reserve_resources(session, "s1", share(100, 1), [(0, 100)])  # 80 GB taken
    with pytest.raises(ReservationConflict), db.write() as session:
        reserve_resources(session, "s1", share(100, 25), [(1, 100)])  # 24 GB device
    assert devices(db) == [(200, 80 * GB), (0, 0)]
    with db.write() as session:
        release_resources(session, "s1", share(100, 30), [(0, 100)])
    assert devices(db) == [(100, 50 * GB), (0, 0)]


def test_the_check_constraint_backs_up_a_buggy_raw_update(seeded: Database) -> None:
    db = seeded
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(
            update(ServerGpuRow)
            .where(ServerGpuRow.gpu_index == 1)
            .values(allocated_memory_mib=24 * GB + 1)
        )
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(
            update(ServerGpuRow).where(ServerGpuRow.gpu_index == 0).values(allocated_memory_mib=-1)
        )
    assert devices(db) == [(0, 0), (0, 0)]


@dataclass(frozen=True)
class Ask:
    device: int
    milli: int  # a share in 0.05 steps
    memory_gb: int
    release: bool  # give it back at once after a successful reserve


asks = st.lists(
    st.builds(
        Ask,
        device=st.integers(0, 1),
        milli=st.integers(1, 19).map(lambda n: n * 50),
        memory_gb=st.sampled_from([0, 4, 10, 20, 30, 50]),
        release=st.booleans(),
    ),
    min_size=4,
    max_size=24,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(asks=asks)
def test_concurrent_reserves_and_releases_never_oversubscribe_a_device(
    seeded: Database, asks: list[Ask]
) -> None:
    db = seeded
    with db.write() as session:  # each example starts from empty devices
        session.execute(update(ServerGpuRow).values(allocated_milli=0, allocated_memory_mib=0))
        session.execute(update(ServerRow).values(alloc_cpu_milli=0, alloc_gpu_milli=0))
    held: list[Ask] = []
    lock = threading.Lock()
    go = threading.Event()  # every ask queued first, so the workers race each other

    def run(ask: Ask) -> None:
        go.wait(timeout=5)
        resources = share(ask.milli, ask.memory_gb)
        try:
            with db.write() as session:
                reserve_resources(session, "s1", resources, [(ask.device, ask.milli)])
        except ReservationConflict:
            return
        if ask.release:
            with db.write() as session:
                release_resources(session, "s1", resources, [(ask.device, ask.milli)])
        else:
            with lock:
                held.append(ask)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(run, ask) for ask in asks]
        go.set()
        for future in futures:
            future.result()
    for device, (milli, memory) in enumerate(devices(db)):
        mine = [a for a in held if a.device == device]
        assert milli == sum(a.milli for a in mine) <= 1000
        assert memory == sum(a.memory_gb * GB for a in mine) <= MEMORY[device]


def test_a_device_reported_smaller_keeps_the_memory_reserved_on_it(seeded: Database) -> None:
    db = seeded
    with db.write() as session:
        reserve_resources(session, "s1", share(100, 30), [(0, 100)])
    reported = [
        Gpu(index=0, uuid="u0", model="H100", memory_mib=20 * GB, allocated_milli=0,
            utilization_pct=None),
        Gpu(index=1, uuid="u1", model="H100", memory_mib=16 * GB, allocated_milli=0,
            utilization_pct=None),
    ]  # fmt: skip
    with db.write() as session:
        assert set_server_capacity(session, "s1", Resources(1_000_000, 1_000_000, 0), reported)
    with db.read() as session:
        server = session.get(ServerRow, "s1")
        assert server is not None
        # Device 0 stays at what is reserved (30 GB) until that ends; device 1 shrinks.
        assert [g.memory_mib for g in server.gpus] == [30 * GB, 16 * GB]
    assert devices(db) == [(100, 30 * GB), (0, 0)]
