"""Schemathesis over every operation of the OpenAPI document, inside the test suite.

A fixed example budget per operation (derandomized, so a run is repeatable) and no
deadline; the checks are the ones issue 13 names: no server error, no status or content
type the document does not state, every response body and header as documented. Runs as
an admin holding an API token (a logout or token call made by the generator must not end
the session the rest of the run uses), on the embedded SQLite with the demo cluster.

The app is built when the module is collected: schemathesis makes one test per operation
from the document, so the document must exist then.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from factories.app import make_context, make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gpuyard.api.app import create_app
from gpuyard.api.routers.stream import MAX_STREAM_S

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Every operation's test has the same node id, and pytest-xdist, which tracks tests
    # by node id, would run one of them and report the rest as never collected.
    raise pytest.UsageError(
        f"{__name__} runs in one process: `pytest {__file__}` (make test does so), not -n"
    )

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
_DATA_DIR = Path(tempfile.mkdtemp(prefix="gpuyard-schemathesis-"))
# The routing login flow is configured so its endpoints answer (not 404): their
# redirects, the 422 for a foreign ``next`` and the 401 for a bad ticket are all checked.
_CTX = make_context(
    make_settings(
        _DATA_DIR,
        None,
        routing_public_url="https://apps.example.com",
        routing_dashboard_url="https://gpuyard.example.com",
    )
)
APP = create_app(_CTX)
# Build contexts are raw tar bytes: sent as generated, like any binary body.
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
_auth: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _admin_api_token() -> Iterator[None]:
    with TestClient(APP) as client:
        login = client.post(
            "/api/v1/auth/login",
            json={"email": _CTX.settings.admin_email, "password": _CTX.settings.admin_password},
        )
        session = {"Authorization": f"Bearer {login.json()['access_token']}"}
        token = client.post("/api/v1/tokens", json={"name": "schemathesis"}, headers=session)
        _auth["Authorization"] = f"Bearer {token.json()['token']}"
    yield
    _CTX.db.dispose()
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_conforms_to_its_documentation(case: schemathesis.Case) -> None:
    _bound_the_live_stream(case)
    case.call_and_validate(headers=_auth, checks=CHECKS)


def _bound_the_live_stream(case: schemathesis.Case) -> None:
    """GET /api/v1/stream stays open until the client leaves: a generated case without
    ``max_s``, or with a long one, gets a short ``max_s`` so the run cannot hang on it.
    Out-of-range and malformed values are left as generated, so the parameter's
    validation (and the authorization, the ``types`` filter and the Last-Event-ID
    header) are still checked."""
    if case.path != "/api/v1/stream":
        return
    query = dict(case.query or {})
    try:
        long_enough = 0.3 < float(query.get("max_s", "inf")) <= MAX_STREAM_S or "max_s" not in query
    except (TypeError, ValueError):
        long_enough = False
    if long_enough:
        query["max_s"] = "0.3"
        case.query = query
