"""Env values are write-only secrets outside the workload's owner: every other reader
(teammates, operators, admins) sees the keys with the values masked, except the keys the
owner marked plain. The runtime still gets the real values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from factories.app import add_user, authed_client, mint_token
from fastapi.testclient import TestClient

from gpuyard.services.containers.replica_specs import replica_job
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import ENV_MASK
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

ENV = {"MODE": "train", "API_TOKEN": "s3cret-token", "DB_PASSWORD": "hunter2"}
MASKED = {"MODE": "train", "API_TOKEN": ENV_MASK, "DB_PASSWORD": ENV_MASK}


@dataclass
class Readers:
    owner: TestClient
    teammate: TestClient
    operator: TestClient
    admin: TestClient
    work: dict[str, Any]


def _as(ctx: ServiceContext, email: str, role: str = "user") -> tuple[TestClient, str]:
    user_id = add_user(ctx, email, "some-pass-123", role=role)
    return authed_client(ctx, mint_token(ctx, user_id)), user_id


@pytest.fixture
def readers(client: TestClient, ctx: ServiceContext) -> Readers:
    owner, owner_id = _as(ctx, "owner@example.com")
    teammate, teammate_id = _as(ctx, "mate@example.com")
    operator, _ = _as(ctx, "ops@example.com", role="operator")
    team = client.post(
        "/api/v1/teams",
        json={
            "name": "vision",
            "members_can_read": True,
            "members": [{"user_id": owner_id}, {"user_id": teammate_id}],
        },
    )
    assert team.status_code == 201, team.text
    created = owner.post(
        "/api/v1/workloads",
        json={
            "image": "busybox",
            # Never placed (five whole servers at once, on four), yet not refused.
            "gpu": 8,
            "replicas": 5,
            "gang": True,
            "env": ENV,
            "plain_env": ["MODE"],
        },
    )  # 64 GPUs: stays pending, so it is in the queue too
    assert created.status_code == 201, created.text
    return Readers(owner, teammate, operator, client, created.json())


def test_the_owner_sees_every_value(readers: Readers) -> None:
    assert readers.work["env"] == ENV  # the create response
    assert readers.work["plain_env"] == ["MODE"]
    assert readers.owner.get(f"/api/v1/workloads/{readers.work['id']}").json()["env"] == ENV


def _reads(client: TestClient, workload_id: str) -> dict[str, dict[str, Any]]:
    """The workload as each read endpoint returns it to ``client``."""
    one = client.get(f"/api/v1/workloads/{workload_id}")
    listed = client.get("/api/v1/workloads")
    queue = client.get("/api/v1/queue")
    for response in (one, listed, queue):
        assert response.status_code == 200, response.text
    return {
        "get": one.json(),
        "list": next(w for w in listed.json()["data"] if w["id"] == workload_id),
        "queue": next(
            e["workload"] for e in queue.json()["data"] if e["workload"]["id"] == workload_id
        ),
    }


@pytest.mark.parametrize(
    ("who", "expected"),
    [("owner", ENV), ("teammate", MASKED), ("operator", MASKED), ("admin", MASKED)],
    ids=["owner", "teammate (members_can_read)", "operator", "admin"],
)
def test_others_see_keys_and_plain_values_only(
    readers: Readers, who: str, expected: dict[str, str]
) -> None:
    reader: TestClient = getattr(readers, who)
    for endpoint, work in _reads(reader, readers.work["id"]).items():
        assert work["env"] == expected, endpoint
        assert work["plain_env"] == ["MODE"], endpoint
    if who != "owner":
        everything = json.dumps(
            [
                reader.get("/api/v1/workloads").json(),
                reader.get("/api/v1/queue").json(),
                reader.get(f"/api/v1/workloads/{readers.work['id']}/events").json(),
            ]
        )
        assert "s3cret-token" not in everything
        assert "hunter2" not in everything


def test_admins_changing_a_workload_see_masked_values(readers: Readers) -> None:
    path = f"/api/v1/workloads/{readers.work['id']}"
    changed = readers.admin.patch(path, json={"priority": 5})
    assert changed.status_code == 200, changed.text
    assert changed.json()["env"] == MASKED
    stopped = readers.operator.post(f"{path}/stop")
    assert stopped.json()["env"] == MASKED
    audit = json.dumps(readers.admin.get("/api/v1/audit", params={"limit": 100}).json())
    assert "s3cret-token" not in audit


def test_the_runtime_gets_the_real_values(readers: Readers, ctx: ServiceContext) -> None:
    with ctx.db.read() as session:
        row = session.get(WorkloadRow, readers.work["id"])
        assert row is not None
        assert row.plain_env_keys == ["MODE"]
        allocation = AllocationRow(
            replica=0, gpu_allocation=[], cpu_milli=1000, ram_mib=1024, storage_mib=0
        )
        assert replica_job(row, allocation, "s1", "docker", {}, {}).env == ENV


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"env": {"A": "1"}, "plain_env": ["B"]}, ["plain_env.0"]),
        ({"env": {"A": "1"}, "plain_env": ["A", "B"]}, ["plain_env.1"]),
        ({"plain_env": ["A"]}, ["plain_env.0"]),
        ({"env": {"A": "1"}, "plain_env": ["1-not-a-name"]}, ["plain_env.0"]),
        ({"env": {"A": "1"}, "plain_env": "A"}, ["plain_env"]),
        ({"env": {"A": "1"}, "plain_env": [1]}, ["plain_env.0"]),
        ({"env": {"A": "1"}, "plain_env": ["A"] * 129}, ["plain_env"]),
    ],
    ids=[
        "not a key of env",
        "the second is not",
        "no env at all",
        "not a variable name",
        "not a list",
        "not a string",
        "too many",
    ],
)
def test_bad_plain_env_is_refused_and_nothing_is_written(
    readers: Readers, body: dict[str, Any], fields: list[str]
) -> None:
    before = readers.admin.get("/api/v1/workloads").json()["count"]
    response = readers.owner.post("/api/v1/workloads", json={"image": "busybox", **body})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == fields
    assert readers.admin.get("/api/v1/workloads").json()["count"] == before


def test_a_repeated_plain_key_is_stored_once(readers: Readers) -> None:
    response = readers.owner.post(
        "/api/v1/workloads",
        json={"image": "busybox", "env": {"A": "1", "B": "2"}, "plain_env": ["B", "A", "B"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["plain_env"] == ["B", "A"]
    got = readers.teammate.get(f"/api/v1/workloads/{response.json()['id']}").json()
    assert got["env"] == {"A": "1", "B": "2"}
