"""Bad input gets a 4xx problem+json naming the field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

VALID: dict[str, Any] = {"image": "busybox", "cpu": 1, "ram_gb": 1, "gpu": 0}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("negative cpu", {**VALID, "cpu": -1}, "cpu"),
    ("cpu not in 0.1 steps", {**VALID, "cpu": 0.25}, "cpu"),
    ("gpu 1.5", {**VALID, "gpu": 1.5}, "gpu"),
    ("gpu share off the 0.05 steps", {**VALID, "gpu": 0.27}, "gpu"),
    ("gpu share below the minimum", {**VALID, "gpu": 0.001}, "gpu"),
    ("gpu_memory_gb with a whole gpu", {**VALID, "gpu": 1, "gpu_memory_gb": 4}, "gpu_memory_gb"),
    ("gpu_memory_gb without a gpu", {**VALID, "gpu_memory_gb": 4}, "gpu_memory_gb"),
    ("gpu_memory_gb negative", {**VALID, "gpu": 0.5, "gpu_memory_gb": -1}, "gpu_memory_gb"),
    ("gpu_memory_gb huge", {**VALID, "gpu": 0.5, "gpu_memory_gb": 1e300}, "gpu_memory_gb"),
    ("gpu_memory_gb a string", {**VALID, "gpu": 0.5, "gpu_memory_gb": "4"}, "gpu_memory_gb"),
    (
        "gpu_memory_gb beyond every device",
        {**VALID, "gpu": 0.5, "gpu_memory_gb": 4000},
        "gpu_memory_gb",
    ),
    ("absurd ram", {**VALID, "ram_gb": 1e9}, "ram_gb"),
    ("negative storage", {**VALID, "storage_gb": -5}, "storage_gb"),
    ("unknown cluster", {**VALID, "cluster_id": "no-such-cluster"}, "cluster_id"),
    ("unknown team", {**VALID, "team_id": "no-such-team"}, "team_id"),
    ("missing image", {"cpu": 1}, "image"),
    ("empty image", {**VALID, "image": ""}, "image"),
    ("cpu as a string", {**VALID, "cpu": "two"}, "cpu"),
    ("numeric string is not a number", {**VALID, "cpu": "2"}, "cpu"),
    ("priority out of range", {**VALID, "priority": 9}, "priority"),
    ("priority as float", {**VALID, "priority": 2.5}, "priority"),
    ("unknown field", {**VALID, "gpus": 2}, "gpus"),
    ("bad port", {**VALID, "ports": [70000]}, "ports.0"),
    ("bad name", {**VALID, "name": "has spaces"}, "name"),
    ("gang of one", {**VALID, "gang": True}, "gang"),
    ("gpu_model without gpu", {**VALID, "gpu_model": "H100"}, "gpu_model"),
    (
        "gpu_model: too many models",
        {**VALID, "gpu": 1, "gpu_model": "|".join("abcdefghi")},
        "gpu_model",
    ),
    ("gpu_model: a blank model", {**VALID, "gpu": 1, "gpu_model": "A100||H100"}, "gpu_model"),
    ("gpu_model: control character", {**VALID, "gpu": 1, "gpu_model": "H100\x00"}, "gpu_model"),
    ("gpu_model: over 128 characters", {**VALID, "gpu": 1, "gpu_model": "x" * 129}, "gpu_model"),
    ("nothing requested", {**VALID, "cpu": 0, "ram_gb": 0}, "cpu"),
    ("env values must be strings", {**VALID, "env": {"A": 1}}, "env.A"),
    # Numbers out of range (issue 13, class 2): a duration of 1e300 was accepted, then
    # failed the lifecycle tick for every workload, every second.
    ("duration beyond a year", {**VALID, "duration_s": 1e300}, "duration_s"),
    ("cpu beyond any server", {**VALID, "cpu": 1e12}, "cpu"),
    ("storage beyond any server", {**VALID, "storage_gb": 1e300}, "storage_gb"),
    ("gpus beyond any server", {**VALID, "gpu": 10**6}, "gpu"),
    ("replicas beyond the maximum", {**VALID, "replicas": 10**9}, "replicas"),
    ("env name not portable", {**VALID, "env": {"A=B": "1"}}, "env.A=B"),
    ("too many env entries", {**VALID, "env": {f"K{i}": "v" for i in range(129)}}, "env"),
    ("command too long", {**VALID, "command": ["x"] * 257}, "command"),
    ("selector not a label", {**VALID, "node_selector": {"a b": "c"}}, "node_selector.a b"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in CASES], ids=[c[0] for c in CASES]
)
def test_bad_workload_is_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/workloads", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]], problem
    assert client.get("/api/v1/workloads").json()["count"] == 0


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/workloads", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert client.get("/api/v1/workloads").json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gpu": 1.5}, "gpu"),
        ({"cpu": -2}, "cpu"),
        ({"priority": 0}, "priority"),
        ({"x": 1}, "x"),
        ({"gpu": 1, "gpu_model": "A100||H100"}, "gpu_model"),
    ],
    ids=["gpu 1.5", "negative cpu", "priority 0", "unknown field", "blank gpu_model alternative"],
)
def test_bad_patch_changes_nothing(client: TestClient, body: dict[str, Any], field: str) -> None:
    created = client.post("/api/v1/workloads", json=VALID).json()
    response = client.patch(f"/api/v1/workloads/{created['id']}", json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    after = client.get(f"/api/v1/workloads/{created['id']}").json()
    assert {k: after[k] for k in ("cpu", "gpu", "priority")} == {"cpu": 1, "gpu": 0, "priority": 3}


def test_unknown_workload_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/workloads/nope")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "s1", "cluster_id": "nope", "cpu": 8, "ram_gb": 32}, "cluster_id"),
        ({"name": "s1", "cpu": 8, "ram_gb": 32}, "cluster_id"),
        ({"name": "bad name", "cluster_id": "x", "cpu": 8, "ram_gb": 32}, "name"),
    ],
    ids=["unknown cluster", "missing cluster", "bad name"],
)
def test_bad_server_is_refused(client: TestClient, body: dict[str, Any], field: str) -> None:
    before = client.get("/api/v1/servers").json()["count"]
    response = client.post("/api/v1/servers", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert client.get("/api/v1/servers").json()["count"] == before


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"image": "busybox", "cpu": Infinity}', "cpu"),
        ('{"image": "busybox", "ram_gb": NaN}', "ram_gb"),
        ('{"image": "busybox", "duration_s": -Infinity}', "duration_s"),
    ],
    ids=["infinity", "nan", "negative infinity"],
)
def test_non_finite_numbers_are_refused(client: TestClient, raw: str, field: str) -> None:
    response = client.post(
        "/api/v1/workloads", content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get("/api/v1/workloads").json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/workloads?limit=1001", "limit"),
        ("/api/v1/workloads?offset=99999999999999999999", "offset"),
        ("/api/v1/audit?limit=0", "limit"),
    ],
    ids=["limit over 1000", "offset past int64", "limit zero"],
)
def test_paging_out_of_range_is_a_422(client: TestClient, path: str, field: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_options_and_allow_name_every_method_of_the_path(client: TestClient) -> None:
    """Starlette's 405 named only the first matching route's methods."""
    options = client.options("/api/v1/workloads")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, OPTIONS, POST"
    refused = client.put("/api/v1/workloads/abc")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_every_operation_documents_its_errors_as_problems(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s.startswith(("4", "5"))}
            assert "422" in errors, (method, path)
            for status, response in errors.items():
                if path == "/readyz" and status == "503":
                    continue  # readiness answers plain JSON
                assert list(response["content"]) == ["application/problem+json"], (path, status)
            if operation.get("x-gpuyard-roles") != ["anyone"]:  # a public route asks no one
                assert {"401", "403"} <= set(errors), (method, path)
