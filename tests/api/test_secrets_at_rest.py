"""Secrets at rest: a kubeconfig is stored encrypted, never returned, never audited."""

from __future__ import annotations

from factories.app import sqlite_only
from fastapi.testclient import TestClient
from sqlalchemy import text

from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import cluster_kubeconfig

KUBECONFIG = """apiVersion: v1
kind: Config
users:
- name: admin
  user:
    token: very-secret-bearer-token-1234
"""


def test_kubeconfig_is_encrypted_at_rest_and_never_returned(
    client: TestClient, ctx: ServiceContext
) -> None:
    response = client.post(
        "/api/v1/clusters", json={"name": "k8s", "kind": "kubernetes", "kubeconfig": KUBECONFIG}
    )
    assert response.status_code == 201, response.text
    cluster = response.json()
    assert cluster["has_kubeconfig"] is True
    assert "kubeconfig" not in cluster
    assert "very-secret" not in client.get(f"/api/v1/clusters/{cluster['id']}").text

    with ctx.db.read() as session:
        raw = session.execute(
            text("SELECT kubeconfig_enc FROM clusters WHERE id = :id"), {"id": cluster["id"]}
        ).scalar_one()
        audit = session.execute(text("SELECT details FROM audit_events")).scalars().all()
    assert raw.startswith(f"gpyenc:v1:{ctx.secret_box.key_id}:")
    assert "very-secret" not in raw
    assert "apiVersion" not in raw
    assert not any("very-secret" in str(details) for details in audit)
    assert cluster_kubeconfig(ctx, cluster["id"]) == KUBECONFIG


@sqlite_only
def test_kubeconfig_only_for_kubernetes_clusters(client: TestClient) -> None:
    response = client.post(
        "/api/v1/clusters", json={"name": "sim", "kind": "simulated", "kubeconfig": KUBECONFIG}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["kubeconfig"]
