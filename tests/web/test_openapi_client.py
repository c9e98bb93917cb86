"""The dashboard's typed client is generated from web/openapi.json: it must be the
document the current code serves, or the client lies about the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "web" / "openapi.json"
SCHEMA_TYPES = REPO / "web" / "src" / "api" / "schema.d.ts"


def current_document() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "gpuyard.cli.main", "openapi"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    document: dict[str, object] = json.loads(out)
    return document


def test_the_committed_openapi_document_is_the_apps() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    current = current_document()
    stale_paths = sorted(
        set(committed["paths"]) ^ set(current["paths"])  # type: ignore[call-overload]
    )
    assert committed == current, (
        "web/openapi.json is stale: run `make web-client` and commit web/openapi.json and "
        f"web/src/api/schema.d.ts (paths added or removed: {stale_paths or 'none'})"
    )


def test_the_generated_types_cover_every_path() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    types = SCHEMA_TYPES.read_text(encoding="utf-8")
    missing = [path for path in committed["paths"] if f'"{path}": {{' not in types]
    assert not missing, f"web/src/api/schema.d.ts is stale: run `make web-client` ({missing})"
