"""The spec a docker replica is started from names exactly the reserved GPUs by UUID."""

from __future__ import annotations

from gpuyard.services.containers.replica_specs import replica_job
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

UUIDS = {i: f"GPU-{i:08d}-aaaa-bbbb-cccc-{i:012d}" for i in range(4)}


def test_a_reservation_of_gpus_1_and_3_carries_exactly_their_uuids() -> None:
    workload = WorkloadRow(
        id="w1", name="train", image="pytorch", command=None, env={"A": "1"}, ports=[8888]
    )
    allocation = AllocationRow(
        id="a1",
        replica=0,
        cpu_milli=4000,
        ram_mib=8192,
        storage_mib=0,
        gpu_milli=2000,
        gpu_allocation=[[1, 1000], [3, 1000]],
    )
    spec = replica_job(workload, allocation, "gpu-host", "docker", UUIDS, {8888: 8205})
    assert list(spec.gpu_indices) == [1, 3]
    assert list(spec.gpu_uuids) == [UUIDS[1], UUIDS[3]]
    assert dict(spec.host_ports) == {8888: 8205}
    assert (spec.cpu_milli, spec.ram_mib, spec.env) == (4000, 8192, {"A": "1"})


def test_a_replica_goes_to_its_teams_namespace_or_the_runtimes_default() -> None:
    workload = WorkloadRow(id="w1", name="t", image="pytorch", command=None, env={}, ports=[])
    allocation = AllocationRow(
        id="a1", replica=0, cpu_milli=1000, ram_mib=512, storage_mib=0, gpu_allocation=[]
    )

    teams = replica_job(workload, allocation, "node-1", "kubernetes", {}, {}, None, "Prod Team")
    none = replica_job(workload, allocation, "node-1", "kubernetes", {}, {})

    assert teams.namespace == "prod-team"
    assert none.namespace == ""  # the runtime's default namespace
