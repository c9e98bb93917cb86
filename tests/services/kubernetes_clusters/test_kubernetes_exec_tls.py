"""Exec and files of a kubernetes workload when the cluster's kubeconfig authenticates
with a client certificate over TLS (its CA as data, no token), as kubeadm's admin.conf
does, against the fake API server (tests/kube/, a test double: not Kubernetes) serving
HTTPS that requires a certificate signed by its CA: the official client's calls and
gpuyard's own exec WebSocket both present it and verify the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import admin_caller, mint_token
from factories.live import served
from fastapi.testclient import TestClient
from kube.fake_apiserver import FakeApiServer, write_kubeconfig
from kube.fake_tls import TlsFiles, make_tls_files
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from websockets.sync.client import connect

from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "pki")


@pytest.fixture
def fake_apiserver(tls_files: TlsFiles) -> Iterator[FakeApiServer]:
    """The fake over HTTPS, client certificates required (overrides kube.conftest's)."""
    server = FakeApiServer(tls=tls_files)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kubeconfig(fake_apiserver: FakeApiServer, tls_files: TlsFiles, tmp_path: Path) -> Path:
    """A kubeconfig with the CA and the client certificate as data, and no token."""
    return write_kubeconfig(tmp_path / "kubeconfig", fake_apiserver.url, None, tls=tls_files)


def test_exec_presents_the_client_certificate_and_trusts_the_clusters_ca(
    ctx: ServiceContext, running: str, fake_apiserver: FakeApiServer
) -> None:
    assert fake_apiserver.url.startswith("https://")
    token = mint_token(ctx, admin_caller(ctx).user_id)

    with served(create_app(ctx)) as url:
        exec_url = f"ws{url.removeprefix('http')}/api/v1/workloads/{running}/exec"
        with connect(f"{exec_url}?token={token}&cmd=echo&cmd=over-tls") as socket:
            output = socket.recv(timeout=10)
            final = json.loads(socket.recv(timeout=10))

    assert output == b"over-tls\n"
    assert final == {"type": "exit", "exit_code": 0}


def test_files_go_over_the_same_tls(api: TestClient, running: str) -> None:
    put = api.put(f"/api/v1/workloads/{running}/files/tls.txt", content=b"secure")

    assert put.status_code == 201, put.text
    assert api.get(f"/api/v1/workloads/{running}/files/tls.txt").content == b"secure"


def test_a_client_without_the_certificate_is_turned_away(
    fake_apiserver: FakeApiServer, tls_files: TlsFiles, tmp_path: Path
) -> None:
    """The fake does require the certificate: a kubeconfig with only the CA gets nowhere."""
    no_cert = write_kubeconfig(tmp_path / "ca-only", fake_apiserver.url, "a-token", tls=None)
    text = no_cert.read_text().replace(
        "server: https", "certificate-authority: " + str(tls_files.ca) + "\n    server: https"
    )
    no_cert.write_text(text)
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(no_cert)))

    with pytest.raises(Exception, match=r"(?i)ssl|certificate|handshake|connection"):
        api.list_node(_request_timeout=(3, 3))
