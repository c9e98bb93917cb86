"""A kubernetes workload through gpuyard's own surfaces, against the fake API server
(tests/kube/, a test double: not Kubernetes): its logs read through the API come from the
pod's /log (a tail, and a follow that streams new lines until the pod ends), a resize of
its CPU and memory patches the pod's resize subresource in place, and the CLI lists the
nodes with their GPUs and the workload on its node like any other server's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.app import (
    admin_caller,
    mint_token,
)
from factories.live import served
from fastapi.testclient import TestClient
from kube.fake_apiserver import FakeApiServer
from kube.workloads import NAMESPACE, NODE, servers, workload
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli import client_commands
from gpuyard.cli.main import app as cli_app
from gpuyard.domain.kube_names import pod_name
from gpuyard.services.context import ServiceContext


def test_the_logs_tail_is_the_pods_log(
    api: TestClient,
    running: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.set_logs(NAMESPACE, pod_name(running, 0), ["epoch 1", "epoch 2", "epoch 3"])

    response = api.get(f"/api/v1/workloads/{running}/logs", params={"tail": 2})

    assert response.status_code == 200, response.text
    assert response.text == "epoch 2\nepoch 3\n"


def test_following_the_logs_streams_new_lines_until_the_pod_ends(
    ctx: ServiceContext,
    running: str,
    fake_apiserver: FakeApiServer,
) -> None:
    name = pod_name(running, 0)
    fake_apiserver.set_logs(NAMESPACE, name, ["epoch 1", "epoch 2"])
    token = mint_token(ctx, admin_caller(ctx).user_id)
    headers = {"Authorization": f"Bearer {token}"}
    params: dict[str, Any] = {"tail": 1, "follow": True}

    with (
        served(create_app(ctx)) as url,
        httpx.Client(base_url=url, headers=headers, timeout=10) as client,
        client.stream("GET", f"/api/v1/workloads/{running}/logs", params=params) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "epoch 2"  # the tail, then what comes
        fake_apiserver.append_log(NAMESPACE, name, "epoch 3")
        assert next(lines) == "epoch 3"
        fake_apiserver.kubelet_terminate(NAMESPACE, name, "Completed", exit_code=0)
        assert list(lines) == []  # the pod ended: so does the stream


def resources_of(fake: FakeApiServer, workload_id: str) -> dict[str, Any]:
    pod = fake.get("pods", pod_name(workload_id, 0), NAMESPACE)
    [container] = pod["spec"]["containers"]
    return dict(container["resources"])


def test_a_cpu_and_memory_resize_patches_the_pod_in_place(
    api: TestClient,
    running: str,
    fake_apiserver: FakeApiServer,
) -> None:
    uid = fake_apiserver.get("pods", pod_name(running, 0), NAMESPACE)["metadata"]["uid"]

    response = api.patch(f"/api/v1/workloads/{running}", json={"cpu": 2, "ram_gb": 8})

    assert response.status_code == 200, response.text
    assert workload(api, running)["status"] == "running"  # not replaced
    events = api.get(f"/api/v1/workloads/{running}/events").json()["data"]
    [event] = [e for e in events if "resized in place" in (e["reason"] or "")]
    [handle] = event["details"]["resized_in_place"]
    assert handle.endswith(f"/{NAMESPACE}/{pod_name(running, 0)}")  # this pod's handle
    pod = fake_apiserver.get("pods", pod_name(running, 0), NAMESPACE)
    assert pod["metadata"]["uid"] == uid  # the same pod
    resized = resources_of(fake_apiserver, running)
    for group in ("requests", "limits"):
        assert resized[group]["cpu"] == "2000m"
        assert resized[group]["memory"] == "8192Mi"
    assert resized["limits"]["nvidia.com/gpu"] == "1"  # the GPUs stay


def test_a_cluster_without_the_resize_subresource_gets_the_pod_replaced(
    api: TestClient,
    running: str,
    fake_apiserver: FakeApiServer,
) -> None:
    fake_apiserver.resize_supported = False  # before Kubernetes 1.33: 404
    before = resources_of(fake_apiserver, running)

    response = api.patch(f"/api/v1/workloads/{running}", json={"cpu": 2, "ram_gb": 8})

    assert response.status_code == 200, response.text
    found = workload(api, running)
    assert found["status"] == "pending"
    assert "not resized in place" in found["reason"]
    assert resources_of(fake_apiserver, running) == before  # the pod was not changed


@pytest.mark.parametrize("gpu", [0.5, 0.1], ids=["half a GPU", "a tenth"])
def test_a_resize_to_a_share_of_a_gpu_is_refused_naming_gpu_and_evicts_nothing(
    ctx: ServiceContext, api: TestClient, running: str, fake_apiserver: FakeApiServer, gpu: float
) -> None:
    """Kubernetes cannot share a GPU (device plugins hand out whole ``nvidia.com/gpu``):
    resizing a pod to a fraction of one is a 422 on ``gpu``; the workload keeps running
    with its reservation, its pod is neither deleted nor patched, nothing is recorded."""
    name = pod_name(running, 0)
    pod_before = fake_apiserver.get("pods", name, NAMESPACE)
    before = workload(api, running)
    events_before = api.get(f"/api/v1/workloads/{running}/events").json()["data"]
    node_before = servers(api, before["cluster_id"])[NODE]

    response = api.patch(f"/api/v1/workloads/{running}", json={"gpu": gpu, "cpu": 2})

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "gpu"
    assert "whole GPUs only" in error["message"]
    after = workload(api, running)
    assert (after["status"], after["gpu"], after["cpu"]) == ("running", 1, before["cpu"])
    assert after["gpu_indices"] == before["gpu_indices"]
    assert api.get(f"/api/v1/workloads/{running}/events").json()["data"] == events_before
    pod = fake_apiserver.get("pods", name, NAMESPACE)
    assert pod["metadata"]["uid"] == pod_before["metadata"]["uid"]
    assert "deletionTimestamp" not in pod["metadata"]
    assert pod["spec"] == pod_before["spec"]
    assert servers(api, before["cluster_id"])[NODE] == node_before  # nothing released


def test_a_pending_workload_naming_a_kubernetes_cluster_cannot_become_a_share(
    api: TestClient, kube_cluster: str
) -> None:
    body = {"name": "w", "image": "x", "gpu": 1, "cluster_id": kube_cluster}
    created = api.post("/api/v1/workloads", json=body)
    assert created.status_code == 201, created.text
    workload_id = created.json()["id"]

    response = api.patch(f"/api/v1/workloads/{workload_id}", json={"gpu": 0.5})

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["gpu"]
    assert workload(api, workload_id)["gpu"] == 1


def test_the_cli_lists_the_nodes_with_their_gpus_and_the_workloads_server(
    ctx: ServiceContext,
    running: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(client_commands.console, "width", 250)  # whole table cells
    monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin_caller(ctx).user_id))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    runner = CliRunner()

    with served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        listed = runner.invoke(cli_app, ["servers"])
        shown = runner.invoke(cli_app, ["ps", "-o", "wide"])  # wide: full ids

    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.output.splitlines() if NODE in line]
    cells = re.split(r"\s{2,}", row.strip())  # columns are 2+ spaces apart
    assert cells[0:5] == [NODE, "online", "1/64", "4/512", "1/4"]
    assert cells[5] == "NVIDIA-H100-80GB-HBM3"
    assert shown.exit_code == 0, shown.output
    [header, *rows] = shown.output.splitlines()
    [row] = [line for line in rows if running in line]
    cells = re.split(r"\s{2,}", row.strip())
    assert cells[0:2] == ["train", "running"]
    assert cells[re.split(r"\s{2,}", header.strip()).index("SERVER")] == NODE
