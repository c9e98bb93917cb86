"""Usage from metrics-server (``metrics.k8s.io/v1beta1``, through the official client's
``CustomObjectsApi``) against the fake API server (tests/kube/, a test double: not
Kubernetes; its metrics group is off unless a test serves it, as on a cluster without
metrics-server): a node's CPU and memory in use reach the usage history as a docker
agent's do (the health probe's reading, then the history loop's sample); a pod's CPU
feeds idle culling, which stops an idle CPU pod and leaves a busy one alone; a cluster
without metrics-server, and a GPU pod, give no signal: never culled when idle, and the
events and the culling state say why. On both databases, on a manual clock."""

from __future__ import annotations

import pytest
from factories.app import settle
from factories.clock import ManualClock
from fastapi.testclient import TestClient
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE, NODE, servers, workload

from gpuyard.domain.kube_names import pod_name
from gpuyard.runtimes.kubernetes import metrics
from gpuyard.services.containers.reconcile import reconcile_servers
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext
from gpuyard.services.culling.loop import cull_workloads
from gpuyard.services.fleet.health import probe_servers
from gpuyard.services.fleet.kube_nodes import sync_kube_nodes
from gpuyard.services.usage.sampling import sample_usage

#: The idle window and warning the culling tests use (seconds).
WINDOW_S = 600
WARN_S = 120


@pytest.fixture
def ctx(clock_ctx: ServiceContext) -> ServiceContext:
    """Each database, on a manual clock; idle culling on (below 5 % for 10 minutes)."""
    clock_ctx.settings = clock_ctx.settings.model_copy(
        update={
            "idle_cull_mode": "on",
            "idle_cull_threshold_pct": 5.0,
            "idle_cull_window_s": WINDOW_S,
            "idle_cull_warn_s": WARN_S,
        }
    )
    return clock_ctx


def running_pod(
    ctx: ServiceContext, api: TestClient, fake: FakeApiServer, body: dict[str, object]
) -> str:
    """A workload submitted with ``body``, its pod created and run by the fake kubelet."""
    response = api.post("/api/v1/workloads", json={"name": "w", "image": "busybox", **body})
    assert response.status_code == 201, response.text
    settle(ctx)
    assert start_scheduled(ctx) == 1
    workload_id = str(response.json()["id"])
    fake.kubelet_run(NAMESPACE, pod_name(workload_id, 0))
    reconcile_servers(ctx)
    assert workload(api, workload_id)["status"] == "running"
    return workload_id


def cull_for(ctx: ServiceContext, seconds: int, step_s: int = 60) -> None:
    """Culling ticks every ``step_s`` over ``seconds`` of the manual clock."""
    assert isinstance(ctx.clock, ManualClock)
    for _ in range(seconds // step_s + 1):
        cull_workloads(ctx)
        ctx.clock.advance(step_s)


def culling_events(api: TestClient, workload_id: str) -> list[str]:
    events = api.get(f"/api/v1/workloads/{workload_id}/events").json()["data"]
    return [
        e["reason"]
        for e in events
        if any(word in (e["reason"] or "") for word in ("idle", "culled", "stopped"))
    ]


@pytest.fixture
def node(
    ctx: ServiceContext, api: TestClient, kube_cluster: str, fake_apiserver: FakeApiServer
) -> str:
    """The fake cluster's one node (16 cores, 64 GiB, 2 GPUs) as a server; its id."""
    fake_apiserver.add_node(NODE, gpus=2, cpu="16", memory="64Gi")
    sync_kube_nodes(ctx)
    return str(servers(api, kube_cluster)[NODE]["id"])


@pytest.mark.parametrize(
    ("cpu", "memory", "cpu_pct", "ram_pct"),
    [
        ("4", "16Gi", 25.0, 25.0),
        # metrics-server's own units (fixtures/node_metrics.json): nanocores and KiB.
        ("3812546203n", "48210936Ki", 100 * 3.812546203 / 16, 100 * 48210936 / (64 << 20)),
    ],
    ids=["whole units", "nanocores and KiB"],
)
def test_a_nodes_usage_from_metrics_server_reaches_the_usage_history(
    ctx: ServiceContext,
    api: TestClient,
    node: str,
    fake_apiserver: FakeApiServer,
    cpu: str,
    memory: str,
    cpu_pct: float,
    ram_pct: float,
) -> None:
    """In percent of the node's capacity (16 cores, 64 GiB)."""
    fake_apiserver.metrics.served = True
    fake_apiserver.metrics.set_node_usage(NODE, cpu=cpu, memory=memory)

    probe_servers(ctx)
    sample_usage(ctx)

    history = api.get(f"/api/v1/servers/{node}/history").json()
    [point] = [p for p in history["points"] if p["samples"]]
    assert point["cpu_used"]["avg"] == pytest.approx(cpu_pct, abs=0.05)  # kept to 0.1
    assert point["ram_used"]["avg"] == pytest.approx(ram_pct, abs=0.05)
    assert point["gpu_utilization"] is None  # metrics-server reports no GPU utilisation
    assert api.get(f"/api/v1/servers/{node}").json()["status"] == "online"


def test_without_metrics_server_the_history_has_no_usage_and_the_node_stays_online(
    ctx: ServiceContext, api: TestClient, node: str, fake_apiserver: FakeApiServer
) -> None:
    """A 404 on the metrics group costs the probe nothing: the node answered, so it is
    online; its usage is unknown (absent), never 0."""
    for _ in range(ctx.settings.health_offline_after_misses + 1):
        probe_servers(ctx)
    sample_usage(ctx)

    assert fake_apiserver.metrics.requests > 0  # it was asked, and said 404
    history = api.get(f"/api/v1/servers/{node}/history").json()
    [point] = [p for p in history["points"] if p["samples"]]
    assert point["cpu_used"] is None
    assert point["ram_used"] is None
    assert point["cpu_allocated"] is not None
    assert api.get(f"/api/v1/servers/{node}").json()["status"] == "online"


def test_an_idle_cpu_pod_is_warned_then_culled_from_its_pod_metrics(
    ctx: ServiceContext, api: TestClient, node: str, fake_apiserver: FakeApiServer
) -> None:
    workload_id = running_pod(ctx, api, fake_apiserver, {"cpu": 2, "ram_gb": 1})
    fake_apiserver.metrics.served = True
    # 20 millicores of the 2 cores it holds: 1 %, under the 5 % threshold.
    fake_apiserver.metrics.set_pod_usage(NAMESPACE, pod_name(workload_id, 0), cpu="20m")

    cull_for(ctx, WINDOW_S + WARN_S)

    assert workload(api, workload_id)["status"] == "stopped"
    said = culling_events(api, workload_id)
    assert any(
        "will be stopped" in text and "CPU utilisation at most 1.0 %" in text for text in said
    )
    assert any(text.startswith("stopped: idle for") for text in said)


def test_a_busy_cpu_pod_is_never_warned(
    ctx: ServiceContext, api: TestClient, node: str, fake_apiserver: FakeApiServer
) -> None:
    workload_id = running_pod(ctx, api, fake_apiserver, {"cpu": 2, "ram_gb": 1})
    fake_apiserver.metrics.served = True
    fake_apiserver.metrics.set_pod_usage(NAMESPACE, pod_name(workload_id, 0), cpu="1500m")

    cull_for(ctx, 3 * WINDOW_S)

    assert workload(api, workload_id)["status"] == "running"
    assert culling_events(api, workload_id) == []
    culling = api.get(f"/api/v1/workloads/{workload_id}/culling").json()
    assert culling["idle_since"] is None
    assert culling["no_signal"] is False


def test_a_pod_not_scraped_yet_is_not_idle(
    ctx: ServiceContext, api: TestClient, node: str, fake_apiserver: FakeApiServer
) -> None:
    """metrics-server is there but has no reading of the pod yet: no reading is never
    idleness, and it is not "no signal" either (it will come)."""
    workload_id = running_pod(ctx, api, fake_apiserver, {"cpu": 2, "ram_gb": 1})
    fake_apiserver.metrics.served = True

    cull_for(ctx, 3 * WINDOW_S)

    assert workload(api, workload_id)["status"] == "running"
    assert culling_events(api, workload_id) == []
    assert api.get(f"/api/v1/workloads/{workload_id}/culling").json()["no_signal"] is False


def test_without_metrics_server_a_cpu_pod_has_no_signal_and_is_never_culled(
    ctx: ServiceContext, api: TestClient, node: str, fake_apiserver: FakeApiServer
) -> None:
    workload_id = running_pod(ctx, api, fake_apiserver, {"cpu": 2, "ram_gb": 1})

    cull_for(ctx, 3 * WINDOW_S)

    assert workload(api, workload_id)["status"] == "running"
    assert culling_events(api, workload_id) == [
        f"never culled when idle: {metrics.NO_METRICS_SERVER}"
    ]
    culling = api.get(f"/api/v1/workloads/{workload_id}/culling").json()
    assert culling["no_signal"] is True
    assert culling["no_signal_reason"] == metrics.NO_METRICS_SERVER

    # metrics-server installed since: the pod has a signal again, and is culled when idle.
    fake_apiserver.metrics.served = True
    fake_apiserver.metrics.set_pod_usage(NAMESPACE, pod_name(workload_id, 0), cpu="0")
    cull_for(ctx, WINDOW_S + WARN_S)
    assert workload(api, workload_id)["status"] == "stopped"


def test_a_gpu_pod_has_no_signal_even_with_metrics_server(
    ctx: ServiceContext, api: TestClient, node: str, fake_apiserver: FakeApiServer
) -> None:
    """metrics-server measures CPU and memory only: an idle CPU reading says nothing of
    whether the GPUs work, so a GPU pod is never culled for idleness, and says why."""
    workload_id = running_pod(ctx, api, fake_apiserver, {"gpu": 1, "cpu": 2, "ram_gb": 1})
    fake_apiserver.metrics.served = True
    fake_apiserver.metrics.set_pod_usage(NAMESPACE, pod_name(workload_id, 0), cpu="0")

    cull_for(ctx, 3 * WINDOW_S)

    assert workload(api, workload_id)["status"] == "running"
    assert culling_events(api, workload_id) == [f"never culled when idle: {metrics.GPU_POD}"]
    culling = api.get(f"/api/v1/workloads/{workload_id}/culling").json()
    assert culling["no_signal_reason"] == metrics.GPU_POD
