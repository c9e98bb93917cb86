"""The interactive API reference at /api/docs, served from this process.

FastAPI's default page loads Swagger UI from a CDN, which shows a blank page on the
air-gapped networks gpuyard is often deployed on; the swagger-ui-bundle package ships the
same assets, so they are served from /api/docs/assets instead.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from gpuyard.api.authorization import public
from gpuyard.auth.permissions import Permission

ASSETS = "/api/docs/assets"


def install_docs_page(app: FastAPI) -> None:
    """Mount the Swagger UI assets and the page (open, like the OpenAPI document)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/api/docs", include_in_schema=False, dependencies=[public(Permission.API_DOCS)])
    async def docs_page(request: Request) -> HTMLResponse:
        # request.app, not `app`: FastAPI caches facts about endpoints in process-wide
        # caches that keep the function alive, and a closure over `app` would keep the
        # app and its context (database engine and all) alive with it.
        return get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/api/openapi.json",
            title="gpuyard API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
