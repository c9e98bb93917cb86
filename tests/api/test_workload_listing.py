"""GET /workloads for the "all workloads" page: a name prefix, an order, pages that
neither overlap nor skip, bounded parameters."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def _names(client: TestClient, **params: object) -> list[str]:
    response = client.get("/api/v1/workloads", params=params)
    assert response.status_code == 200, response.text
    return [w["name"] for w in response.json()["data"]]


@pytest.fixture
def listed(client: TestClient) -> TestClient:
    for name, priority in (("train-b", 2), ("Train-c", 5), ("train-a", 3), ("serve", 1)):
        body = {"image": "busybox", "name": name, "priority": priority}
        assert client.post("/api/v1/workloads", json=body).status_code == 201
    return client


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["serve", "train-a", "Train-c", "train-b"]),
        ({"sort": "oldest"}, ["train-b", "Train-c", "train-a", "serve"]),
        ({"sort": "name"}, ["Train-c", "serve", "train-a", "train-b"]),
        ({"sort": "priority"}, ["Train-c", "train-a", "train-b", "serve"]),
        ({"name_prefix": "train-"}, ["train-a", "train-b"]),
        ({"name_prefix": "train-", "sort": "name", "limit": 1, "offset": 1}, ["train-b"]),
        ({"name_prefix": "%"}, []),
    ],
    ids=[
        "newest first by default",
        "oldest first",
        "by name (case-sensitive, capitals first)",
        "highest priority first",
        "prefix is case-sensitive",
        "a page of a prefixed, sorted list",
        "LIKE wildcards are plain text",
    ],
)
def test_prefix_sort_and_pages(
    listed: TestClient, params: dict[str, object], expected: list[str]
) -> None:
    assert _names(listed, **params) == expected


def test_pages_of_one_cover_the_list_once(listed: TestClient) -> None:
    for sort in ("newest", "oldest", "name", "priority", "status"):
        whole = _names(listed, sort=sort)
        paged = [
            n for offset in range(4) for n in _names(listed, sort=sort, limit=1, offset=offset)
        ]
        assert paged == whole, sort


@pytest.mark.parametrize(
    ("param", "value"),
    [("sort", "random"), ("name_prefix", "x" * 129), ("owner_id", "x" * 65)],
)
def test_bad_parameters_are_named(client: TestClient, param: str, value: str) -> None:
    response = client.get("/api/v1/workloads", params={param: value})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [param]
