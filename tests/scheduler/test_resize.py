"""resize_in_place: fit the new size on the same server, keeping devices where possible."""

from __future__ import annotations

import pytest
from factories.scheduler import A100, H100, make_running, make_server, make_snapshot, res

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.resize import resize_in_place
from gpuyard.scheduler.snapshot import GpuAllocation, RunningReplica, ServerView

OTHER_SHARE = make_running("other", gpus=[0], share=0.5)

# (name, server devices, others running, current replica, new resources, model, expected)
CASES = [
    (
        "grow 2 -> 3 GPUs keeps both devices, adds one from the shortest free run",
        make_server(gpus=8),
        [make_running("other", gpus=[0])],
        make_running("me", gpus=[4, 5]),
        res(1, 1, 0, 3),
        None,
        ((4, 1000), (5, 1000), (6, 1000)),
    ),
    (
        "shrink 4 -> 2 GPUs keeps the first two",
        make_server(gpus=4),
        [],
        make_running("me", gpus=[0, 1, 2, 3]),
        res(1, 1, 0, 2),
        None,
        ((0, 1000), (1, 1000)),
    ),
    (
        "share grows on its own device when there is room",
        make_server(gpus=2),
        [OTHER_SHARE],
        make_running("me", gpus=[0], share=0.3),
        res(1, 1, 0, 0.5),
        None,
        ((0, 500),),
    ),
    (
        "share grows past its device: moves to the best fit",
        make_server(gpus=3),
        [OTHER_SHARE, make_running("third", gpus=[2], share=0.2)],
        make_running("me", gpus=[0], share=0.3),
        res(1, 1, 0, 0.8),
        None,
        ((2, 800),),
    ),
    (
        "whole -> share stays on its device",
        make_server(gpus=2),
        [],
        make_running("me", gpus=[1]),
        res(1, 1, 0, 0.5),
        None,
        ((1, 500),),
    ),
    (
        "share -> whole cannot keep a device shared with others",
        make_server(gpus=2),
        [OTHER_SHARE],
        make_running("me", gpus=[0], share=0.3),
        res(1, 1, 0, 1),
        None,
        ((1, 1000),),
    ),
    ("drop the GPU", make_server(gpus=1), [], make_running("me", gpus=[0]), res(2, 2), None, ()),
    (
        "more GPUs than free",
        make_server(gpus=2),
        [make_running("other", gpus=[0])],
        make_running("me", gpus=[1]),
        res(1, 1, 0, 2),
        None,
        None,
    ),
    (
        "cpu does not fit",
        make_server(cpu=8),
        [make_running("other", cpu=6)],
        make_running("me", cpu=1),
        res(4, 1),
        None,
        None,
    ),
    (
        "equal edge: exactly the free cpu plus its own",
        make_server(cpu=8),
        [make_running("other", cpu=6)],
        make_running("me", cpu=1),
        res(2, 1),
        None,
        (),
    ),
    (
        "only devices of the model count",
        make_server(models=[H100, A100, H100]),
        [],
        make_running("me", gpus=[0]),
        res(1, 1, 0, 2),
        "H100",
        ((0, 1000), (2, 1000)),
    ),
    (
        "invalid size",
        make_server(gpus=4),
        [],
        make_running("me", gpus=[0]),
        res(1, 1, 0, 1.5),
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("server", "others", "current", "new", "model", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_resize_in_place(
    server: ServerView,
    others: list[RunningReplica],
    current: RunningReplica,
    new: Resources,
    model: str | None,
    expected: GpuAllocation | None,
) -> None:
    snapshot = make_snapshot([server], [*others, current])
    assert resize_in_place(snapshot.servers[0], current, new, model) == expected


def test_resize_refuses_a_replica_from_another_server() -> None:
    snapshot = make_snapshot([make_server("s1")])
    with pytest.raises(ValueError, match="runs on s2"):
        resize_in_place(snapshot.servers[0], make_running("me", "s2"), res(1, 1), None)
