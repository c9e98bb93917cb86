"""Host port ranges by image type, and what happens when a range is full."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import make_context, make_settings
from sqlalchemy import select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.services.containers.ports import port_range_for
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.submission import create_workload
from gpuyard.settings import Settings, parse_port_ranges
from gpuyard.store.fleet_tables import ClusterRow, ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.runtime_tables import PortAllocationRow
from gpuyard.store.workload_tables import WorkloadRow

RANGES = Settings().port_range_table


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx:1.27", (8000, 8099)),
        ("library/httpd", (8100, 8199)),
        ("python:3.12-slim", (8200, 8299)),
        ("node:22", (8300, 8399)),
        ("linuxserver/openssh-server", (9000, 9999)),
        ("acme/ssh", (2200, 2210)),
        ("pytorch/pytorch:2.4", (9000, 9999)),
    ],
)
def test_the_range_follows_the_image_type(image: str, expected: tuple[int, int]) -> None:
    assert port_range_for(image, RANGES, None) == expected


def test_a_server_range_overrides_the_image_type() -> None:
    assert port_range_for("nginx", RANGES, (21000, 21009)) == (21000, 21009)


@pytest.mark.parametrize("text", ["nginx=8000-8099", "*=9-1", "*=0-10", "x"])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"port range"):
        parse_port_ranges(text)


def test_a_full_port_range_is_a_reason_not_a_hot_retry(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None, demo=False))
    with ctx.db.write() as session:
        session.add(ClusterRow(id="d", name="d", kind="docker"))
        session.flush()
        session.add(
            ServerRow(
                id="h1",
                name="h1",
                cluster_id="d",
                cpu_milli=8000,
                ram_mib=8192,
                storage_mib=0,
                agent_url="http://127.0.0.1:9",
                host_port_min=30000,
                host_port_max=30000,
            )
        )
        admin = session.scalar(select(UserRow.id))
    caller = Caller(str(admin), "admin@example.com", Role.ADMIN)
    first = create_workload(ctx, caller, WorkloadCreate(image="nginx", ports=[80], cluster_id="d"))
    second = create_workload(ctx, caller, WorkloadCreate(image="nginx", ports=[80], cluster_id="d"))

    stats = run_scheduling_cycle(ctx)

    assert stats.conflicts == 0  # nothing raced: no immediate re-run of the scheduler
    with ctx.db.read() as session:
        placed, waiting = session.get(WorkloadRow, first.id), session.get(WorkloadRow, second.id)
        ports = session.scalars(select(PortAllocationRow.host_port)).all()
    assert placed is not None
    assert waiting is not None
    assert placed.status == "scheduled"
    assert ports == [30000]
    assert waiting.status == "pending"
    assert waiting.reason == "fits on h1 but no free host port in 30000-30000"
    ctx.db.dispose()
