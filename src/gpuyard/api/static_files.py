"""The dashboard: the built single-page app (web/, built into gpuyard/web_dist) at ``/``.

Every path that is not the API's (``/api``, ``/healthz``, ``/readyz``, ``/docs``) is the
dashboard's: a file of the build when there is one (Vite's content-hashed ``assets/`` are
cached for a year), else ``index.html``, so that client-side routes such as
``/workloads`` survive a reload. The routes declare the public ``DASHBOARD`` permission
like every other route; the page asks the API who is logged in.

When the dashboard was not built (a source checkout before ``make web``), ``/`` answers
an HTML page that says how to build it instead of a JSON 404.
"""

from __future__ import annotations

import html
from pathlib import Path, PurePosixPath

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from gpuyard.api.authorization import public
from gpuyard.auth.permissions import Permission

#: Where the wheel (and `make web`) puts the build.
DEFAULT_DIST = Path(__file__).resolve().parent.parent / "web_dist"

#: Top-level paths that belong to the server, never to the dashboard.
SERVER_PREFIXES = ("api", "healthz", "readyz", "docs")

# Scripts only from this origin and never inline; Mantine sets CSS variables in <style>
# elements, hence the inline styles. The API is same-origin, so connect-src 'self'.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
IMMUTABLE = "public, max-age=31536000, immutable"

# Explicit, so that a machine's /etc/mime.types cannot serve scripts as text/plain (which
# browsers refuse for modules under nosniff).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


class DashboardPathConvertor(Convertor[str]):
    """A path that is not the server's own: ``/api/v1/nope`` stays an API 404 (or 405),
    never the dashboard's page."""

    regex = r"(?!(?:" + "|".join(SERVER_PREFIXES) + r")(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dashboard_path", DashboardPathConvertor())


def install_dashboard(app: FastAPI, dist_dir: Path = DEFAULT_DIST) -> None:
    """Serve the dashboard from ``dist_dir``; call after every other route is added."""
    root = dist_dir.resolve()

    @app.api_route(
        "/{path:dashboard_path}",
        methods=["GET", "HEAD"],
        include_in_schema=False,
        dependencies=[public(Permission.DASHBOARD)],
    )
    async def dashboard(path: str) -> Response:
        index = root / "index.html"
        if not index.is_file():
            return _not_built(root)
        target = _file_in(root, path)
        if target is not None:
            headers = {"X-Content-Type-Options": "nosniff"}
            if target == index:
                headers = HTML_HEADERS
            elif target.parent == root / "assets":
                headers["Cache-Control"] = IMMUTABLE
            else:
                headers["Cache-Control"] = "no-cache"
            return FileResponse(target, headers=headers, media_type=_content_type(target))
        if path.startswith("assets/") or PurePosixPath(path).suffix:
            # A missing file, not a page: index.html would be served as the script.
            raise HTTPException(404, f"no dashboard file {path!r}")
        return FileResponse(index, headers=HTML_HEADERS, media_type=CONTENT_TYPES[".html"])


def _file_in(root: Path, path: str) -> Path | None:
    """The regular file ``path`` names inside ``root``, or None: no escaping it with
    ``..``, absolute paths or links that point outside."""
    if not path or "\\" in path:
        return None
    try:
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
    except (OSError, RuntimeError):  # a name too long; a loop of links (RuntimeError <3.13)
        return None
    return target


def _content_type(target: Path) -> str:
    return CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")


def _not_built(root: Path) -> HTMLResponse:
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gpuyard: dashboard not built</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The gpuyard dashboard is not built</h1>
<p>This server found no dashboard in <code>{html.escape(str(root))}</code>.</p>
<p>From a source checkout, build it with <code>make web</code> (or start everything with
<code>make run</code>), then reload this page. Node.js 20 and npm are needed to build it.</p>
<p>The API works without it: see the <a href="/api/docs">API reference</a>.</p>
</body></html>
"""
    headers = {**HTML_HEADERS, "Cache-Control": "no-store"}
    return HTMLResponse(page, status_code=503, headers=headers)
