"""Where a replica's published ports are reached is its runtime's word: a docker server's
at its agent's host; a simulated server publishes none."""

from __future__ import annotations

from pathlib import Path

from factories.app import admin_caller, make_context, make_settings
from sqlalchemy import select

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.services.names import names_for_workloads
from gpuyard.services.scheduling.cycle import run_scheduling_cycle
from gpuyard.services.workloads.submission import create_workload, get_workload
from gpuyard.store.fleet_tables import ClusterRow, ServerRow


def test_ports_are_reached_at_the_agents_host_and_nowhere_on_a_simulated_server(
    tmp_path: Path,
) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None, demo=True))
    with ctx.db.write() as session:
        demo = session.scalars(select(ClusterRow.id).where(ClusterRow.name == "demo")).one()
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
                agent_url="http://gpu-1.example:8090",
                host_port_min=30000,
                host_port_max=30009,
            )
        )
    caller = admin_caller(ctx)
    on_docker = create_workload(
        ctx, caller, WorkloadCreate(image="nginx", ports=[80], cluster_id="d")
    )
    on_demo = create_workload(
        ctx, caller, WorkloadCreate(image="nginx", ports=[80], cluster_id=demo)
    )

    run_scheduling_cycle(ctx)

    docker_workload = get_workload(ctx, caller, on_docker.id)
    demo_workload = get_workload(ctx, caller, on_demo.id)
    names = names_for_workloads(ctx, [docker_workload, demo_workload])
    docker_placement = docker_workload.placements[0]
    assert docker_placement.server_id == "h1"
    assert names.server_hosts == {"h1": "gpu-1.example"}
    assert names.host_ports[docker_placement.allocation_id] == {80: 30000}
    demo_server = demo_workload.placements[0].server_id
    assert demo_server != "h1"
    assert names.servers[demo_server] != "h1"  # named, but not reached anywhere
    assert demo_server not in names.server_hosts
    ctx.db.dispose()
