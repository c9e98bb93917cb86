"""Refusing what can never run (issue 21): scheduler/feasibility.py agrees with the engine.

The property: on an emptied fleet of online servers, a request that ``never_fits``
accepts is placed by a real scheduling cycle, and one it refuses is not. So the refusal
at submit never turns away work the scheduler could run, and never lets through work it
could not."""

from __future__ import annotations

from factories.scheduler import make_pending, make_server, make_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuyard.domain.pools import SERVER_NAME_SELECTOR
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.feasibility import never_fits
from gpuyard.scheduler.snapshot import PendingWorkload, SchedulerConfig, ServerView

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-40GB"

servers = st.lists(
    st.builds(
        lambda i, gpus, model, cpu, ram, cluster, zone: make_server(
            f"s{i}",
            gpus=gpus,
            model=model,
            cpu=cpu,
            ram_gb=ram,
            cluster=cluster,
            labels={"zone": zone} if zone else {},
        ),
        st.integers(0, 10**6),
        st.integers(0, 8),
        st.sampled_from([H100, A100]),
        st.sampled_from([16, 64]),
        st.sampled_from([64, 512]),
        st.sampled_from(["c1", "c2"]),
        st.sampled_from([None, "a", "b"]),
    ),
    min_size=0,
    max_size=4,
    unique_by=lambda s: s.id,
)

requests = st.builds(
    lambda gpu, model, cpu, ram, cluster, zone: make_pending(
        "w",
        gpu=gpu if gpu else 0,
        model=model if gpu else None,
        cpu=cpu,
        ram_gb=ram,
        cluster=cluster,
        selector={"zone": zone} if zone else None,
    ),
    st.sampled_from([0, 0.5, 1, 2, 4, 8, 16]),
    st.sampled_from([None, "H100", "A100", "B200"]),
    st.sampled_from([1, 32, 64, 128]),
    st.sampled_from([1, 256, 600]),
    st.sampled_from([None, "c1", "c2"]),
    st.sampled_from([None, "a", "b"]),
)


@settings(max_examples=300, deadline=None)
@given(fleet=servers, request=requests)
def test_never_fits_agrees_with_a_cycle_on_the_emptied_fleet(
    fleet: list[ServerView], request: PendingWorkload
) -> None:
    found = never_fits(request, fleet)
    in_scope = [s for s in fleet if request.cluster_id in (None, s.cluster_id)]
    if not in_scope:
        assert found is None  # an empty scope is not judged
        return
    placed = schedule_cycle(make_snapshot(fleet), [request], SchedulerConfig(), now=0).admitted
    assert (found is None) == bool(placed), found


def test_the_refusal_names_the_field_and_what_exists() -> None:
    fleet = [make_server("s1", gpus=8, model=H100), make_server("s2", gpus=4, model=A100)]
    model = never_fits(make_pending("w", gpu=1, model="B200"), fleet)
    assert model is not None
    assert model.field == "gpu_model"
    assert f"{A100} (up to 4 per server)" in model.message
    assert f"{H100} (up to 8 per server)" in model.message
    count = never_fits(make_pending("w", gpu=8, model="A100"), fleet)
    assert count is not None
    assert count.field == "gpu"
    assert "at most 4 per server" in count.message
    cpu = never_fits(make_pending("w", cpu=65), fleet)
    assert cpu is not None
    assert cpu.field == "cpu"
    assert "at most 64 per server" in cpu.message
    labels = never_fits(make_pending("w", selector={"zone": "mars"}), fleet)
    assert labels is not None
    assert labels.field == "node_selector"
    assert never_fits(make_pending("w", gpu=8, model="H100"), fleet) is None
    # The warm pools' server-name key names a server, as the scheduler's labels filter reads it.
    pinned = never_fits(make_pending("w", selector={SERVER_NAME_SELECTOR: "s2"}), fleet)
    assert pinned is None
    gone = never_fits(make_pending("w", selector={SERVER_NAME_SELECTOR: "s9"}), fleet)
    assert gone is not None
    assert gone.field == "node_selector"


def test_an_offline_server_still_counts_and_an_empty_scope_is_not_judged() -> None:
    offline = make_server("s1", gpus=8, model=H100, status="offline", cluster="c1")
    assert never_fits(make_pending("w", gpu=8, model="H100"), [offline]) is None
    assert never_fits(make_pending("w", gpu=8, cluster="c2"), [offline]) is None


def test_a_capacity_shared_cluster_is_judged_by_labels_only() -> None:
    """A kubernetes node's recorded capacity is what foreign pods leave: none of its GPUs
    or cores now is no reason to refuse, since they come back when those pods end."""
    node = make_server("n1", gpus=0, cpu=2, cluster="kube", labels={"zone": "a"})
    big = make_pending("w", gpu=4, cpu=16, model="H100", cluster="kube")
    assert never_fits(big, [node], capacity_shared={"kube"}) is None
    # The same node in a cluster whose capacity is its own is judged in full.
    refused = never_fits(big, [node])
    assert refused is not None
    assert refused.field == "gpu_model"
    # Labels are the node's, not a share of it: still judged.
    elsewhere = make_pending("w", gpu=1, cluster="kube", selector={"zone": "b"})
    labels = never_fits(elsewhere, [node], capacity_shared={"kube"})
    assert labels is not None
    assert labels.field == "node_selector"
