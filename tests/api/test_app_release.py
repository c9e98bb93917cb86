"""An app that is dropped lets go of its context (database engine and all): nothing
process-wide keeps it. FastAPI caches facts about every endpoint and dependency in
process-wide caches that hold the functions; an endpoint made per app that closes over the
app kept every app built in the process alive (4.7 GB by the end of a test run)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from factories.app import authed_client, make_context, make_settings

from gpuyard.api.app import create_app


def _serve_once(data_dir: Path) -> tuple[weakref.ref[object], weakref.ref[object]]:
    ctx = make_context(make_settings(data_dir, None))
    with authed_client(ctx) as client:
        for path in ("/api/docs", "/api/openapi.json", "/api/v1/workloads", "/healthz"):
            assert client.get(path).status_code < 500, path
        app_ref: weakref.ref[object] = weakref.ref(client.app)
    ctx.db.dispose()
    return app_ref, weakref.ref(ctx)


def test_a_dropped_app_and_its_context_are_freed(tmp_path: Path) -> None:
    create_app(make_context(make_settings(tmp_path / "warm", None)))  # import-time caches
    app_ref, ctx_ref = _serve_once(tmp_path / "data")
    gc.collect()
    for ref in (app_ref, ctx_ref):
        held = ref()
        assert held is None, [type(r).__name__ for r in gc.get_referrers(held)]
