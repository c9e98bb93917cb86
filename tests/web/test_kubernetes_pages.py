"""A Kubernetes cluster in the dashboard, in a real browser against a real `gpuyard serve`:
its nodes are listed among the servers with their GPUs, a node's page shows the GPU a
kube workload holds, and the workload's page shows it running on its node, like any
other server's and workload's.

The cluster is the fake API server (tests/kube/, a test double: not Kubernetes), run in
this process on 127.0.0.1 and registered over the API from its kubeconfig; `gpuyard
serve`'s own loops list its nodes, create the pod, and see it run once the fake kubelet
says so. At the end its nodes are removed, so the session's other tests never get work
placed there."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kube.fake_apiserver import FakeApiServer, write_kubeconfig
from playwright.sync_api import Page, expect

from web.conftest import LiveServer
from web.pages import ClustersPage, ServerDetailPage, ServersPage, WorkloadDetailPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]

T = TypeVar("T")
#: The kube-nodes loop lists every 5 s and the reconcile loop looks every 10 s (defaults).
WAIT_S = 45.0


def wait_for(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no {what} after {WAIT_S:.0f} s")


@dataclass
class KubeCluster:
    id: str
    name: str
    fake: FakeApiServer
    gpu_node: str
    cpu_node: str

    def servers(self, live_server: LiveServer) -> dict[str, dict[str, Any]]:
        listed = live_server.api("GET", "/servers", params={"cluster_id": self.id, "limit": 100})
        return {s["name"]: s for s in listed["data"]}


@pytest.fixture
def kube_cluster(live_server: LiveServer, tmp_path: Path) -> Iterator[KubeCluster]:
    suffix = uuid.uuid4().hex[:6]
    fake = FakeApiServer()
    fake.start()
    gpu_node, cpu_node = f"gke-gpu-{suffix}", f"gke-cpu-{suffix}"
    fake.add_node(gpu_node, gpus=2, cpu="32", memory="256Gi")
    fake.add_node(cpu_node, gpus=0, cpu="8", memory="32Gi")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url, fake.token)
    cluster = live_server.api(
        "POST",
        "/clusters",
        json={"name": f"k8s-{suffix}", "kind": "kubernetes", "kubeconfig": kubeconfig.read_text()},
    )
    found = KubeCluster(cluster["id"], cluster["name"], fake, gpu_node, cpu_node)
    try:
        wait_for(lambda: len(found.servers(live_server)) == 2, "servers for the two nodes")
        yield found
    finally:
        for node in (gpu_node, cpu_node):
            fake.remove_node(node)
        try:
            wait_for(
                lambda: all(s["status"] == "offline" for s in found.servers(live_server).values()),
                "offline servers once their nodes are gone",
            )
        finally:
            fake.close()


def test_a_kubernetes_clusters_nodes_and_workload_show_like_any_other(
    admin_page: Page, live_server: LiveServer, kube_cluster: KubeCluster
) -> None:
    fake, node = kube_cluster.fake, kube_cluster.gpu_node
    name = f"kube-train-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "image": "busybox", "gpu": 1, "cpu": 2, "ram_gb": 8}
    workload = live_server.api("POST", "/workloads", json={**body, "cluster_id": kube_cluster.id})
    pod = wait_for(
        lambda: next((p for p in fake.names("pods") if workload["id"] in p[1]), None),
        "pod created by gpuyard's starter",
    )
    assert fake.get("pods", pod[1], pod[0])["spec"]["nodeName"] == node
    fake.kubelet_run(*pod)
    running = wait_for(
        lambda: (
            (w := live_server.api("GET", f"/workloads/{workload['id']}"))["status"] == "running"
            and w
        ),
        "running workload",
    )
    assert running["server_name"] == node

    clusters = ClustersPage(admin_page)
    clusters.open()
    expect(clusters.row(kube_cluster.name)).to_contain_text("kubernetes")

    servers = ServersPage(admin_page)
    servers.open()
    servers.search(node)
    servers.expect_loaded()
    expect(servers.cell(node, "Status")).to_have_text("online")
    expect(servers.row(node)).to_contain_text("NVIDIA-H100-80GB-HBM3")
    servers.search(kube_cluster.cpu_node)
    expect(servers.cell(kube_cluster.cpu_node, "Status")).to_have_text("online")
    servers.search(node)
    servers.open_server(node)

    detail = ServerDetailPage(admin_page, running["server_id"])
    detail.expect_loaded()
    expect(detail.title).to_have_text(f"Server {node}")
    expect(detail.status).to_have_text("online")
    (held,) = running["gpu_indices"]
    held_card = detail.gpu_card(held)
    expect(held_card).to_contain_text("NVIDIA-H100-80GB-HBM3")
    expect(detail.gpu_card(1 - held)).to_contain_text("nobody")
    holder = held_card.get_by_role("link", name=name)
    expect(holder).to_be_visible()
    detail.screenshot("kubernetes-node")

    holder.click()
    page = WorkloadDetailPage(admin_page)
    expect(admin_page).to_have_url(re.compile(f"/workloads/{workload['id']}$"))
    page.expect_loaded()
    expect(page.status).to_have_text("running")
    expect(page.server).to_contain_text(node)
    expect(page.gpus).to_contain_text(str(held))
    page.screenshot("kubernetes-workload")

    live_server.api("POST", f"/workloads/{workload['id']}/stop")
    namespace, pod_name = pod
    wait_for(
        lambda: "deletionTimestamp" in fake.get("pods", pod_name, namespace)["metadata"],
        "pod deleted with a grace period after the stop",
    )
    fake.kubelet_finish_delete(namespace, pod_name)  # the kubelet saw it exit
    wait_for(lambda: pod not in fake.names("pods"), "pod gone")
