"""Where the engine puts replicas: pack vs spread, GPU slots, mixed models, tie-breaks."""

from __future__ import annotations

import pytest
from factories.scheduler import (
    A100,
    H100,
    make_pending,
    make_running,
    make_server,
    make_snapshot,
    placed_on,
)

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import PendingWorkload, SchedulerConfig, ServerView

PACK = SchedulerConfig(profile="pack")
SPREAD = SchedulerConfig(profile="spread")

# (name, servers, workload, server chosen by pack, server chosen by spread)
CHOICES = [
    (
        "one GPU: pack fills the nearly full server, spread the empty one",
        [make_server("empty", gpus=8), make_server("busy", gpus=8, gpu_used=[1000] * 7)],
        make_pending("w", gpu=1),
        "busy",
        "empty",
    ),
    (
        "two GPUs: pack takes the best fit (exactly 2 free) over 3 or 8 free",
        [
            make_server("eight", gpus=8),
            make_server("three", gpus=8, gpu_used=[1000] * 5),
            make_server("two", gpus=8, gpu_used=[1000] * 6),
        ],
        make_pending("w", gpu=2),
        "two",
        "eight",
    ),
    (
        "share: pack uses a partly used device instead of breaking a whole GPU",
        [make_server("empty", gpus=8), make_server("shared", gpus=8, gpu_used=[500])],
        make_pending("w", gpu=0.5),
        "shared",
        "empty",
    ),
    (
        "share without partly used devices breaks one on the most fragmented server",
        [make_server("whole", gpus=8), make_server("frag", gpus=8, gpu_used=[1000] * 6)],
        make_pending("w", gpu=0.3),
        "frag",
        "whole",
    ),
    (
        "share best fit across servers: least room left on the device",
        [
            make_server("roomy", gpus=2, gpu_used=[200, 1000]),
            make_server("snug", gpus=2, gpu_used=[600, 1000]),
        ],
        make_pending("w", gpu=0.4),
        "snug",
        "roomy",
    ),
    (
        "cpu-only: pack keeps GPU servers' CPUs for GPU work",
        [make_server("gpu", gpus=8), make_server("cpu", cpu=64)],
        make_pending("w", cpu=4),
        "cpu",
        "gpu",
    ),
    (
        "cpu-only: pack prefers the fuller server",
        [
            make_server("a", used=Resources(8000, 8192, 0, 0)),
            make_server("b", used=Resources(32000, 65536, 0, 0)),
        ],
        make_pending("w", cpu=4),
        "b",
        "a",
    ),
    (
        "identical servers: lowest id wins (deterministic)",
        [make_server("s2", gpus=4), make_server("s1", gpus=4), make_server("s3", gpus=4)],
        make_pending("w", gpu=1),
        "s1",
        "s1",
    ),
]


@pytest.mark.parametrize(
    ("servers", "workload", "pack_choice", "spread_choice"),
    [c[1:] for c in CHOICES],
    ids=[c[0] for c in CHOICES],
)
def test_pack_and_spread(
    servers: list[ServerView], workload: PendingWorkload, pack_choice: str, spread_choice: str
) -> None:
    snapshot = make_snapshot(servers)
    pack = schedule_cycle(snapshot, [workload], PACK, now=0)
    spread = schedule_cycle(snapshot, [workload], SPREAD, now=0)
    assert [s for s, _ in placed_on(pack, "w")] == [pack_choice]
    assert [s for s, _ in placed_on(spread, "w")] == [spread_choice]


@pytest.mark.parametrize("profile", ["pack", "spread"])
def test_whole_gpu_replicas_get_distinct_devices(profile: str) -> None:
    snapshot = make_snapshot([make_server("s1", gpus=4)])
    pending = [make_pending(f"w{i}", gpu=1, submitted_at=i) for i in range(5)]
    result = schedule_cycle(snapshot, pending, SchedulerConfig(profile=profile), now=0)
    devices = [idx for i in range(5) for _, alloc in placed_on(result, f"w{i}") for idx, _ in alloc]
    assert sorted(devices) == [0, 1, 2, 3]
    assert [p.workload_id for p in result.pending] == ["w4"]


def test_fractional_shares_pack_onto_one_device() -> None:
    snapshot = make_snapshot([make_server("s1", gpus=2)])
    pending = [make_pending(f"w{i}", gpu=0.3, submitted_at=i) for i in range(4)]
    result = schedule_cycle(snapshot, pending, PACK, now=0)
    allocs = [placed_on(result, f"w{i}")[0][1] for i in range(4)]
    assert allocs == [((0, 300),), ((0, 300),), ((0, 300),), ((1, 300),)]


def test_share_packs_next_to_running_share() -> None:
    running = [make_running("r", "s1", gpus=[1], share=0.5)]
    snapshot = make_snapshot([make_server("s1", gpus=2)], running)
    result = schedule_cycle(snapshot, [make_pending("w", gpu=0.5)], PACK, now=0)
    assert placed_on(result, "w") == [("s1", ((1, 500),))]


def test_mixed_models_only_matching_devices_are_used() -> None:
    server = make_server("mix", models=[A100, H100, A100, H100])
    result = schedule_cycle(
        make_snapshot([server]), [make_pending("w", gpu=2, model="H100")], PACK, now=0
    )
    assert placed_on(result, "w") == [("mix", ((1, 1000), (3, 1000)))]


def test_model_request_skips_servers_of_other_models() -> None:
    servers = [make_server("a100", gpus=8, model=A100), make_server("h100", gpus=8, model=H100)]
    result = schedule_cycle(
        make_snapshot(servers), [make_pending("w", gpu=1, model="H100")], PACK, now=0
    )
    assert [s for s, _ in placed_on(result, "w")] == ["h100"]


def test_cluster_and_labels_restrict_servers() -> None:
    servers = [
        make_server("c1-ssd", cluster="c1", labels={"disk": "ssd"}),
        make_server("c2-ssd", cluster="c2", labels={"disk": "ssd"}),
        make_server("c2-hdd", cluster="c2", labels={"disk": "hdd"}),
    ]
    workload = make_pending("w", cluster="c2", selector={"disk": "ssd"})
    result = schedule_cycle(make_snapshot(servers), [workload], PACK, now=0)
    assert [s for s, _ in placed_on(result, "w")] == ["c2-ssd"]


def test_capped_candidate_search_still_packs_tightest_first() -> None:
    # 200 empty servers and one with exactly one GPU free: visited first despite the cap.
    servers = [make_server(f"e{i:03d}", gpus=8) for i in range(200)]
    servers.append(make_server("z-tight", gpus=8, gpu_used=[1000] * 7))
    config = SchedulerConfig(candidates_to_score=4)
    result = schedule_cycle(make_snapshot(servers), [make_pending("w", gpu=1)], config, now=0)
    assert [s for s, _ in placed_on(result, "w")] == ["z-tight"]
