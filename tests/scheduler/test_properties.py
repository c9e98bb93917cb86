"""Hypothesis: random create/finish/resize/delete/server changes never oversubscribe.

Each step changes a model world, runs a cycle on its snapshot, checks the cycle did not
touch its input, applies the decisions literally (:class:`World.apply` checks victims are
strictly lower priority, preemptible and unprotected) and checks the invariants.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any
from unittest.mock import patch

from factories.scheduler import A100, H100, make_quota, make_running, make_server, res
from hypothesis import event, given, settings, target
from hypothesis import strategies as st

from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.placement import Placer
from gpuyard.scheduler.resize import resize_in_place
from gpuyard.scheduler.snapshot import SchedulerConfig

from .world import Spec, World

MIN_RUNTIME = 20.0
GPUS = st.sampled_from([0, 0.05, 0.2, 0.25, 0.5, 0.7, 0.95, 1, 2, 3, 4])
#: GPU memory (GB) a share reserves: most ask for none; devices have 80 or 24 GB.
GPU_MEMORY = st.sampled_from([0, 0, 0, 10, 20, 40, 70])


def with_memory(resources: Resources, memory_gb: int) -> Resources:
    """``resources`` reserving ``memory_gb`` on its device when it is a share of one GPU."""
    memory = memory_gb * 1024 if resources.is_gpu_share else 0
    return replace(resources, gpu_memory_mib=memory)


@dataclass(frozen=True)
class Create:
    priority: int
    gpu: float
    cpu: int
    replicas: int
    gang: bool
    preemptible: bool
    model: str | None
    team: str | None
    memory_gb: int = 0


@dataclass(frozen=True)
class Finish:  # finish or delete: the workload and its replicas go away
    pick: int


@dataclass(frozen=True)
class Patch:
    pick: int
    gpu: float
    cpu: int


@dataclass(frozen=True)
class AddServer:
    gpus: int
    model: str  # H100, A100 or "mix"
    memory_gb: int = 80


@dataclass(frozen=True)
class ServerChange:
    pick: int
    change: str  # drain, online, remove


@dataclass(frozen=True)
class Tick:
    seconds: int


Op = Create | Finish | Patch | AddServer | ServerChange | Tick

create = st.builds(
    Create,
    priority=st.integers(1, 5),
    gpu=GPUS,
    cpu=st.integers(1, 8),
    replicas=st.integers(1, 3),
    gang=st.booleans(),
    preemptible=st.booleans(),
    model=st.sampled_from([None, None, "H100", "A100"]),
    team=st.sampled_from([None, "ml"]),
    memory_gb=GPU_MEMORY,
)
operations = st.lists(
    st.one_of(
        create,
        create,
        create,
        st.builds(Finish, st.integers(0, 50)),
        st.builds(Patch, st.integers(0, 50), GPUS, st.integers(1, 8)),
        st.builds(
            AddServer,
            st.sampled_from([0, 1, 2, 4, 8]),
            st.sampled_from([H100, A100, "mix"]),
            st.sampled_from([80, 24]),
        ),
        st.builds(ServerChange, st.integers(0, 20), st.sampled_from(["drain", "online", "remove"])),
        st.builds(Tick, st.integers(1, 120)),
    ),
    min_size=6,
    max_size=30,
)


def run_op(world: World, op: Op, serial: int) -> None:
    ids = sorted(world.specs)
    servers = sorted(world.servers)
    if isinstance(op, Create):
        wid = f"w{serial}"
        world.specs[wid] = Spec(
            id=wid,
            priority=op.priority,
            resources=with_memory(res(op.cpu, 4, 0, op.gpu), op.memory_gb),
            replicas=op.replicas,
            gang=op.gang,
            preemptible=op.preemptible,
            model=op.model,
            team=op.team,
            submitted_at=world.now,
        )
    elif isinstance(op, Finish) and ids:
        wid = ids[op.pick % len(ids)]
        del world.specs[wid]
        for key in [k for k in world.running if k[0] == wid]:
            del world.running[key]
    elif isinstance(op, Patch) and ids:
        spec = world.specs[ids[op.pick % len(ids)]]
        # A PATCH keeps the GPU memory a share asked for (it is not part of the body).
        spec.resources = with_memory(
            res(op.cpu, 4, 0, op.gpu), spec.resources.gpu_memory_mib // 1024
        )
        for key in sorted(k for k in world.running if k[0] == spec.id):
            current = world.running[key]
            server = next(s for s in world.snapshot().servers if s.id == current.server_id)
            alloc = resize_in_place(server, current, spec.resources, spec.model)
            if alloc is None:
                del world.running[key]  # no longer fits there: back to pending
            else:
                world.running[key] = replace(
                    current, resources=spec.resources, gpu_allocation=alloc
                )
    elif isinstance(op, AddServer):
        sid = f"s{serial}"
        if op.model == "mix":
            world.servers[sid] = make_server(
                sid, models=[H100, A100] * (op.gpus // 2), cpu=16, memory_gb=op.memory_gb
            )
        else:
            world.servers[sid] = make_server(
                sid, gpus=op.gpus, model=op.model, cpu=16, memory_gb=op.memory_gb
            )
    elif isinstance(op, ServerChange) and servers:
        sid = servers[op.pick % len(servers)]
        if op.change == "remove":
            del world.servers[sid]
            for key in [k for k, r in world.running.items() if r.server_id == sid]:
                del world.running[key]  # lost with its server: re-queued
        else:
            status = ServerStatus.DRAINING if op.change == "drain" else ServerStatus.ONLINE
            world.servers[sid] = replace(world.servers[sid], status=status)
    elif isinstance(op, Tick):
        world.now += op.seconds


def prefilled_world() -> World:
    """Two full servers of low-priority preemptible work, so new work must often preempt."""
    world = World(quotas={"ml": make_quota("ml", gpu=6)})
    world.servers["s-a"] = make_server("s-a", gpus=4, cpu=16)
    world.servers["s-b"] = make_server("s-b", models=[H100, H100, A100, A100], cpu=16)
    for sid, prio in (("s-a", 1), ("s-b", 2)):
        wid = f"fill-{sid}"
        world.specs[wid] = Spec(wid, prio, res(2, 4, 0, 2), replicas=2, submitted_at=-100)
        for replica, devices in enumerate(((0, 1), (2, 3))):
            world.running[(wid, replica)] = make_running(
                wid,
                sid,
                gpus=list(devices),
                cpu=2,
                ram_gb=4,
                priority=prio,
                started_at=-100,
                replica=replica,
            )
    return world


@settings(max_examples=150, deadline=None)
@given(operations, st.sampled_from(["pack", "binpack", "spread"]))
def test_random_operations_never_oversubscribe(ops: list[Op], profile: str) -> None:
    world = prefilled_world()
    config = SchedulerConfig(
        profile=profile, min_runtime_seconds=MIN_RUNTIME, starvation_seconds=60
    )
    evictions = 0
    for serial, op in enumerate(ops):
        run_op(world, op, serial)
        world.check_invariants()
        snapshot, pending = world.snapshot(), world.pending()
        before = copy.deepcopy((snapshot, pending))
        result = schedule_cycle(snapshot, pending, config, now=world.now)
        assert (snapshot, pending) == before, "Snapshot was modified"
        assert sorted(result.order) == sorted(p.workload_id for p in pending)
        for admission in result.admitted:
            event("preempted" if admission.victims else "admitted")
            if world.specs[admission.workload_id].resources.gpu_memory_mib:
                event("admitted a share with GPU memory")
            evictions += len(admission.victims)
        for waiting in result.pending:
            event(f"pending {waiting.code.value}")
        world.apply(result, pending, MIN_RUNTIME)
        world.check_invariants()
        world.now += 1
    target(evictions)


class _NoScoreCache(dict[object, dict[str, object]]):
    """A score cache that never keeps anything: every candidate is scored afresh."""

    def setdefault(self, key: object, default: object = None) -> dict[str, object]:
        return {}


@settings(max_examples=60, deadline=None)
@given(operations, st.sampled_from(["pack", "spread"]))
def test_the_score_cache_changes_no_decision(ops: list[Op], profile: str) -> None:
    world = prefilled_world()
    config = SchedulerConfig(profile=profile, starvation_seconds=60)
    original_init = Placer.__init__

    def uncached_init(self: Placer, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._scored = _NoScoreCache()  # type: ignore[assignment]

    for serial, op in enumerate(ops):
        run_op(world, op, serial)
        snapshot, pending = world.snapshot(), world.pending()
        cached = schedule_cycle(snapshot, pending, config, now=world.now)
        with patch.object(Placer, "__init__", uncached_init):
            uncached = schedule_cycle(snapshot, pending, config, now=world.now)
        assert cached == uncached
        world.apply(cached, pending, 0.0)
        world.now += 1
