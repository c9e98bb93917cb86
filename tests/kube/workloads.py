"""Lookups the kubernetes tests repeat, through gpuyard's API (fixtures: the conftest of
tests/services/kubernetes_clusters/)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

#: The default namespace: the workloads of the tests have no team.
NAMESPACE = "gpuyard"
#: The node the tests' GPU workloads run on.
NODE = "gpu-node-1"


def servers(api: TestClient, cluster_id: str) -> dict[str, dict[str, Any]]:
    """The cluster's servers by name, as the API lists them."""
    response = api.get("/api/v1/servers", params={"cluster_id": cluster_id, "limit": 100})
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["data"]}


def workload(api: TestClient, workload_id: str) -> dict[str, Any]:
    """The workload as the API shows it."""
    response = api.get(f"/api/v1/workloads/{workload_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())
