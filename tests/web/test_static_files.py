"""The dashboard's static files (api/static_files.py): SPA fallback, caching, content
types, security headers, no way out of the build folder, and the page shown when the
dashboard was not built. Against a small fake build, so no Node is needed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gpuyard.api.authorization import check_route_permissions
from gpuyard.api.errors import install_error_handlers
from gpuyard.api.static_files import IMMUTABLE, install_dashboard
from gpuyard.auth.permissions import Permission
from gpuyard.settings import Settings

INDEX = "<!doctype html><html><head><script type=module src=/assets/app-1a2b.js></script>"


def make_app(dist: Path) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # The public dependency reads the settings (which proxies to trust) from the context.
    app.state.ctx = _Context(Settings(data_dir=dist.parent / "data"))
    install_error_handlers(app)

    @app.get("/api/v1/thing", dependencies=[])
    def thing() -> dict[str, str]:  # stands in for the API routes added before
        return {"thing": "yes"}

    install_dashboard(app, dist)
    return app


class _Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "web_dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-1a2b.js").write_text("console.log('app')")
    (root / "assets" / "app-1a2b.css").write_text("body{}")
    (root / "assets" / "font-3c4d.woff2").write_bytes(b"wOF2")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


@pytest.fixture
def client(dist: Path) -> TestClient:
    return TestClient(make_app(dist))


@pytest.mark.parametrize("path", ["/", "/workloads", "/admin/users", "/workloads/abc123"])
def test_client_side_routes_get_index_html_uncached_with_security_headers(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/assets/app-1a2b.js", "text/javascript; charset=utf-8"),
        ("/assets/app-1a2b.css", "text/css; charset=utf-8"),
        ("/assets/font-3c4d.woff2", "font/woff2"),
    ],
)
def test_hashed_assets_are_immutable_with_their_content_type(
    client: TestClient, path: str, content_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["x-content-type-options"] == "nosniff"


def test_unhashed_files_are_revalidated(client: TestClient) -> None:
    response = client.get("/favicon.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "no-cache"


def test_head_answers_like_get_without_a_body(client: TestClient) -> None:
    response = client.head("/assets/app-1a2b.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.content == b""


@pytest.mark.parametrize("path", ["/assets/missing-0000.js", "/assets/", "/missing.png"])
def test_a_missing_file_is_a_404_not_the_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/")
    assert INDEX not in response.text


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/", "/api", "/healthz/x", "/readyz/x", "/docs", "/docs/x"]
)
def test_server_paths_never_get_the_dashboard(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_unsafe_methods_on_api_paths_stay_api_404s(client: TestClient) -> None:
    assert client.post("/api/v1/nope").status_code == 404
    assert client.get("/api/v1/thing").json() == {"thing": "yes"}


def _raw_get(client_app: FastAPI, raw_path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (HTTP clients normalise '..' away), through a real
    uvicorn server, so the server's own path handling is what is tested."""
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(client_app, host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(
                f"GET {raw_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    finally:
        server.should_exit = True
        thread.join(10)
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    "raw_path",
    [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
    ],
)
def test_no_file_outside_the_build_is_served(dist: Path, raw_path: str) -> None:
    status, body = _raw_get(make_app(dist), raw_path)
    assert b"outside the build" not in body
    assert b"root:" not in body
    # Either refused, or the dashboard's own page (a client-side route that does not exist).
    assert status == 404 or body == INDEX.encode(), (status, body[:200])


@pytest.mark.parametrize(
    ("path", "status"),
    [("/" + "a" * 300, 200), ("/" + "a/" * 2000, 200), ("/" + "x" * 300 + ".js", 404)],
)
def test_paths_the_file_system_refuses_are_not_errors(
    client: TestClient, path: str, status: int
) -> None:
    response = client.get(path)
    assert response.status_code == status


def test_a_loop_of_links_is_not_an_error(dist: Path, client: TestClient) -> None:
    (dist / "assets" / "loop-a.js").symlink_to(dist / "assets" / "loop-b.js")
    (dist / "assets" / "loop-b.js").symlink_to(dist / "assets" / "loop-a.js")
    assert client.get("/assets/loop-a.js").status_code == 404


def test_a_link_out_of_the_build_is_not_followed(dist: Path, client: TestClient) -> None:
    (dist / "assets" / "escape.txt").symlink_to(dist.parent / "secret.txt")
    response = client.get("/assets/escape.txt")
    assert response.status_code == 404
    assert "outside the build" not in response.text


def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    client = TestClient(make_app(tmp_path / "not-built"))
    for path in ("/", "/workloads"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/html")
        assert "make web" in response.text
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_dashboard_routes_are_declared_public() -> None:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    install_dashboard(app, Path("/nonexistent"))
    declared = check_route_permissions(app)
    assert declared == {
        ("GET", "/{path}"): Permission.DASHBOARD,
        ("HEAD", "/{path}"): Permission.DASHBOARD,
    }


def test_the_real_app_serves_the_dashboard_after_every_api_route(tmp_path: Path) -> None:
    from factories.app import make_context, make_settings

    from gpuyard.api.app import create_app

    ctx = make_context(make_settings(tmp_path, None, demo=False))
    try:
        client = TestClient(create_app(ctx))
        page = client.get("/workloads")
        assert page.status_code in (200, 503)  # built, or the page saying how to build it
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert client.get("/api/v1/nope").json()["status"] == 404
        assert client.post("/api/v1/nope").status_code == 404
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/api/docs").headers["content-type"].startswith("text/html")
        # Unstorable text in the path is refused like in any other route (never a 500).
        assert client.get("/a%00b").status_code == 422
        for invalid_utf8 in ("/x%ed%a0%80y", "/assets/x%ff.js", "/%c0%ae%c0%ae/secret"):
            assert client.get(invalid_utf8).status_code < 500
    finally:
        ctx.db.dispose()
