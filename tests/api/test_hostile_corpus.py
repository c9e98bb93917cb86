"""The hostile-input corpus, replayed over every write endpoint (issue 13).

Every operation of the OpenAPI document that takes a JSON body is found from the document
itself, so a new write endpoint joins the corpus the day it is added (and fails here until
it has a valid base body below). For each of its fields, each hostile value class replaces
the field's value (and, for objects and arrays, a key, a value or an item inside it). The
answer must be either:
- a 4xx problem+json naming that field (or the body limit, for a 413), with the database
  exactly as it was (every row of every table compared), or
- a success, after which every list and detail that can show the new row still renders,
  for its author and for an admin.
Never a 5xx.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from factories.app import add_user, make_context, make_settings, mint_token
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from gpuyard.api.app import create_app
from gpuyard.runtimes.host_ssh import generate_key
from gpuyard.services.context import ServiceContext

_DEEP = 3000  # deeper than Python's JSON parser recurses
#: A valid private key for the host SSH settings' base body (generated once: cheap).
_SSH_KEY = generate_key()[0]


#: Stands in for the deeply nested value, which json.dumps itself cannot write: the
#: request's text gets the raw nesting in its place.
_DEEP_MARK = "__deeply_nested__"
_DEEP_TEXT = "[" * _DEEP + '"x"' + "]" * _DEEP


#: value classes: name -> value (json.dumps writes inf/nan as Infinity/NaN tokens, and a
#: lone surrogate as its \ud800 escape, which is how an attacker sends them).
HOSTILE: dict[str, Any] = {
    "nul": "a\x00b",
    "lone surrogate": "x\ud800y",
    "low surrogate": "\udfff",
    "bidi and zero-width": "a\u202e\u200bb",
    "long text": "x" * 300_000,
    "huge number": 1e308,
    "huge negative": -1e308,
    "huge integer": 10**40,
    "infinity": math.inf,
    "nan": math.nan,
    "object": {"a": {"b": [1, None]}},
    "long array": ["x"] * 60_000,
    "many keys": {f"K{i}": "v" for i in range(20_000)},
    "deep nesting": _DEEP_MARK,
    "null": None,
}
#: Classes also planted inside an object (as a key and as a value) or an array (an item).
INNER = ("nul", "lone surrogate", "long text", "huge number")


@dataclass
class World:
    """Objects the base bodies refer to, made through the API as an admin would."""

    admin: TestClient
    ctx: ServiceContext
    cluster_id: str
    workload_id: str
    team_id: str
    user_id: str
    server_id: str
    image_id: str
    registry_id: str
    pool_id: str
    names: Iterator[int]

    def name(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names)}"


def _register_body(world: World) -> dict[str, Any]:
    """A fresh invite for each request: a register that succeeds uses its code up."""
    email = f"{world.name('invitee')}@example.com"
    response = world.admin.post("/api/v1/invites", json={"email": email, "role": "user"})
    assert response.status_code == 201, response.text
    return {"email": email, "password": "long-enough-1", "invite_code": response.json()["code"]}


#: A valid body for each operation id; a callable gets fresh names for each request.
BASE_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "workloads-create_workload": lambda w: {
        "image": "busybox",
        "name": w.name("wl"),
        "cpu": 0.5,
        "ram_gb": 1,
        "env": {"A": "1"},
        "command": ["sleep", "1"],
        "node_selector": {"zone": "demo"},
        "duration_s": 60,
        "image_id": w.image_id,
        "files_path": "/srv/www",
    },
    "workloads-update_workload": lambda w: {"cpu": 1, "priority": 2},
    # A plan takes a submission's body and writes nothing.
    "workloads-plan_submission": lambda w: BASE_BODIES["workloads-create_workload"](w),
    "auth-login": lambda w: {"email": "nobody@example.com", "password": "wrong-password"},
    "auth-register": _register_body,
    "invites-create_invite": lambda w: {"email": f"{w.name('i')}@example.com", "role": "user"},
    "users-create_user": lambda w: {
        "email": f"{w.name('u')}@example.com",
        "password": "long-enough-1",
        "role": "user",
    },
    "users-update_user": lambda w: {"username": w.name("user")},
    "teams-create_team": lambda w: {
        "name": w.name("team"),
        "quota": {"gpu": 1},
        "max_priority": 4,
        "members": [{"user_id": w.user_id}],
        "hierarchy": {
            "guarantee": {"gpu": 1, "gpu_models": {"H100": 1}},
            "gpu_model_limits": {"H100": 2},
            "weights": {"gpu": 2},
            "gpu_model_weights": {"H100": 3},
        },
    },
    "teams-update_team": lambda w: {"members_can_read": True, "max_priority": 4},
    "teams-add_member": lambda w: {
        "user_id": add_user(w.ctx, f"{w.name('member')}@example.com", "some-pass-123"),
        "is_team_admin": False,
    },
    "teams-update_member": lambda w: {"is_team_admin": True},
    "tokens-create_token": lambda w: {"name": w.name("tok"), "expires_in_days": 1},
    "clusters-create_cluster": lambda w: {"name": w.name("cl"), "kind": "simulated"},
    "clusters-update_cluster": lambda w: {"name": w.name("renamed")},
    "servers-create_server": lambda w: {
        "name": w.name("srv"),
        "cluster_id": w.cluster_id,
        "cpu": 8,
        "ram_gb": 16,
        "gpus": [{"model": "A100", "memory_gb": 40}],
        "labels": {"zone": "a"},
    },
    "servers-update_server": lambda w: {"labels": {"zone": "b"}},
    # A real run on the corpus's simulated server: nothing to clean, one server event.
    "servers-clean_up_server": lambda w: {"dry_run": False, "retention_hours": 1},
    # Settings only: nothing connects until a terminal is opened.
    "servers-set_server_ssh": lambda w: {
        "host": "gpu-1.example",
        "port": 2222,
        "username": "gpuyard",
        "private_key": _SSH_KEY,
    },
    "images-create_image": lambda w: {
        "name": w.name("img"),
        "reference": "registry.example:5000/team/web:1.0",
        "type": "nginx",
        "default_port": 80,
        "cpu": 0.5,
        "ram_gb": 1,
        "description": "a web server",
        "files_path": "/srv/www",
    },
    "images-update_image": lambda w: {"description": "changed", "cpu": 1},
    "registries-create_registry": lambda w: {
        "name": w.name("reg"),
        "url": f"http://{w.name('reg')}.example:5000",
        "username": "pusher",
        "password": "registry-pass",
    },
    # The corpus's server is simulated: a valid body reaches it and gets its 409.
    "server-images-pull_image": lambda w: {"reference": "busybox:1", "registry_id": None},
    "server-images-push_image": lambda w: {"source": "busybox:1", "registry_id": w.registry_id},
    "pools-create_pool": lambda w: {
        "name": w.name("pool"),
        "image_type": "nginx",
        "image": "nginx:1.27",
        "cluster_id": w.cluster_id,
        "target_size": 1,
        "port_min": 32000,
        "port_max": 32010,
        "container_port": 80,
        "cpu": 0.5,
        "ram_gb": 0.5,
        "command": ["nginx", "-g", "daemon off;"],
        "env": {"A": "1"},
        "files_path": "/srv/www",
    },
    "pools-update_pool": lambda w: {"target_size": 2, "port_min": 32000, "port_max": 32020},
    "culling-set_image_type_policy": lambda w: {
        "mode": "on",
        "threshold_pct": 5,
        "window_s": 7200,
    },
    "culling-set_team_policy": lambda w: {
        "mode": "off",
        "threshold_pct": 10,
        "window_s": 3600,
        "max_lifetime_s": 86400,
    },
}

#: Reads that show what the writes above make: every one must render after a success.
READS = (
    "/api/v1/workloads",
    "/api/v1/queue",
    "/api/v1/servers",
    "/api/v1/servers/{server_id}",
    "/api/v1/servers/{server_id}/events",
    "/api/v1/fleet/overview",
    "/api/v1/invites",
    "/api/v1/audit/verify",
    "/api/v1/servers/{server_id}/history",
    "/api/v1/fleet/history",
    "/api/v1/clusters",
    "/api/v1/images",
    "/api/v1/registries",
    "/api/v1/teams",
    "/api/v1/users",
    "/api/v1/tokens",
    "/api/v1/audit",
    "/api/v1/auth/me",
    "/api/v1/pools",
    "/api/v1/culling/policies",
)


def _body_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(operation id, method, path, body schema) of every operation with a JSON body."""
    with tempfile.TemporaryDirectory() as data_dir:
        ctx = make_context(make_settings(Path(data_dir), None, demo=False))
        document = create_app(ctx).openapi()
        ctx.db.dispose()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = _resolve(document, content["application/json"]["schema"])
                found.append((operation["operationId"], method, path, schema))
    return found


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@dataclass(frozen=True)
class Case:
    operation: str
    method: str
    path: str
    field: str
    placement: str  # "value", "key", "inner value", "item"
    hostile: str


def _cases() -> list[Case]:
    cases = []
    for operation, method, path, schema in _body_operations():
        for field, prop in schema.get("properties", {}).items():
            kinds = _json_types(prop)
            for hostile in HOSTILE:
                cases.append(Case(operation, method, path, field, "value", hostile))
            for hostile in INNER:
                if "object" in kinds:
                    cases.append(Case(operation, method, path, field, "key", hostile))
                    cases.append(Case(operation, method, path, field, "inner value", hostile))
                if "array" in kinds:
                    cases.append(Case(operation, method, path, field, "item", hostile))
    return cases


def _json_types(prop: dict[str, Any]) -> set[str]:
    types = {prop.get("type")} if "type" in prop else set()
    for option in prop.get("anyOf", []) + prop.get("allOf", []):
        types |= _json_types(option)
    if "$ref" in prop or "additionalProperties" in prop:
        types.add("object")
    return {t for t in types if t}


CASES = _cases()


def _placed(case: Case) -> Any:
    value = HOSTILE[case.hostile]
    if case.placement == "key":
        return {value if isinstance(value, str) else str(value): "v"}
    if case.placement == "inner value":
        return {"k": value}
    if case.placement == "item":
        return [value]
    return value


def _fingerprint(ctx: ServiceContext) -> str:
    """A digest of every row of every table: equal digests mean nothing was written.
    (The driver's own cursor: the corpus takes thousands of digests, and SQLAlchemy's
    per-row and per-value processing made them a third of its time.)"""
    digest = hashlib.sha256()
    with ctx.db.engine.connect() as conn:
        tables = sorted(inspect(conn).get_table_names())
        cursor = conn.connection.cursor()
        try:
            for table in tables:
                cursor.execute(f'SELECT * FROM "{table}"')
                rows = cursor.fetchall()
                digest.update(table.encode())
                digest.update(repr(sorted(map(repr, rows))).encode("utf-8", "backslashreplace"))
        finally:
            cursor.close()
    return digest.hexdigest()


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> World:
    clusters = client.get("/api/v1/clusters").json()["data"]
    user_id = add_user(ctx, "someone@example.com", "some-pass-123")
    # The user is a member, so the member routes have someone to change.
    team = client.post(
        "/api/v1/teams", json={"name": "corpus-team", "members": [{"user_id": user_id}]}
    ).json()
    workload = client.post("/api/v1/workloads", json={"image": "busybox"}).json()
    server = client.get("/api/v1/servers").json()["data"][0]
    image = client.post(
        "/api/v1/images", json={"name": "corpus-image", "reference": "busybox", "type": "shell"}
    ).json()
    registry = client.post(
        "/api/v1/registries", json={"name": "corpus-registry", "url": "127.0.0.1:5000"}
    ).json()
    made = World(
        admin=client,
        ctx=ctx,
        cluster_id=clusters[0]["id"],
        workload_id=workload["id"],
        team_id=team["id"],
        user_id=user_id,
        server_id=server["id"],
        image_id=image["id"],
        registry_id=registry["id"],
        pool_id="",
        names=count(),
    )
    pool = client.post("/api/v1/pools", json=BASE_BODIES["pools-create_pool"](made))
    assert pool.status_code == 201, pool.text
    made.pool_id = pool.json()["id"]
    return made


def test_every_body_operation_has_a_base_body() -> None:
    operations = {operation for operation, *_ in _body_operations()}
    missing = operations - set(BASE_BODIES)
    assert not missing, f"add a valid base body to BASE_BODIES for: {sorted(missing)}"
    assert len(CASES) > 500


def _path_of(case: Case, world: World) -> str:
    return (
        case.path.replace("{workload_id}", world.workload_id)
        .replace("{team_id}", world.team_id)
        .replace("{user_id}", world.user_id)
        .replace("{server_id}", world.server_id)
        .replace("{cluster_id}", world.cluster_id)
        .replace("{image_id}", world.image_id)
        .replace("{registry_id}", world.registry_id)
        .replace("{pool_id}", world.pool_id)
        .replace("{image_type}", "nginx")
    )


def _body(case: Case, world: World) -> dict[str, Any]:
    """The base body (which may make what it needs, an invite) with the hostile value."""
    return {**BASE_BODIES[case.operation](world), case.field: _placed(case)}


def _send(client: TestClient, case: Case, world: World, body: dict[str, Any]) -> Any:
    # Infinity, NaN and \ud800 escapes, as an attacker sends them.
    payload = json.dumps(body).replace(f'"{_DEEP_MARK}"', _DEEP_TEXT)
    return client.request(
        case.method.upper(),
        _path_of(case, world),
        content=payload.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"},
    )


def _check_renders(world: World) -> None:
    # The admin's app (building one per accepted case cost more than the checks).
    owner = TestClient(world.admin.app)
    owner.headers["Authorization"] = f"Bearer {mint_token(world.ctx, world.user_id)}"
    for reader in (world.admin, owner):
        for path in READS:
            response = reader.get(path.replace("{server_id}", world.server_id))
            assert response.status_code in (200, 403), (path, response.status_code, response.text)
            assert response.status_code != 500


#: The live stream takes no body: its inputs are a query parameter and a header. Each
#: hostile value class goes into each of them (max_s keeps every accepted stream short).
STREAM_INPUTS = ("types", "max_s", "Last-Event-ID")


@pytest.mark.slow
def test_hostile_corpus_over_the_live_stream(world: World) -> None:
    client = TestClient(create_app(world.ctx), raise_server_exceptions=False)
    client.headers.update(world.admin.headers)
    failures: list[str] = []
    refused = 0
    for name, value in HOSTILE.items():
        text = _DEEP_TEXT if value == _DEEP_MARK else json.dumps(value).strip('"')
        for field in STREAM_INPUTS:
            params = {"max_s": "0.1"}
            headers = {}
            if field == "Last-Event-ID":
                try:
                    headers[field] = text.encode("latin-1")
                except UnicodeEncodeError:
                    continue  # no HTTP client can send it as a header
            elif len(text) > 60_000:
                continue  # longer than any URL an HTTP client sends (httpx refuses it)
            else:
                params[field] = text
            before = _fingerprint(world.ctx)
            response = client.get("/api/v1/stream", params=params, headers=headers)
            label = f"stream {field} {name}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400:
                refused += 1
                fields = [e["field"] for e in response.json().get("errors", [])]
                if field not in fields:
                    failures.append(f"{label}: {response.status_code} names {fields}")
            elif "text/event-stream" not in response.headers["content-type"]:
                failures.append(f"{label}: {response.headers['content-type']}")
            elif field == "Last-Event-ID" and "event: resync" not in response.text:
                failures.append(f"{label}: accepted without a resync")
            if _fingerprint(world.ctx) != before:
                failures.append(f"{label}: wrote to the database")
    assert not failures, "\n".join(failures)
    assert refused > len(HOSTILE)  # the corpus is hostile: most of it must be refused


#: A value that passed validation may still be refused by the service (a wrong password,
#: a duplicate): not a validation answer, so it need not name the field.
_REFUSED_FOR_OTHER_REASONS = {401, 403, 404, 409}


@pytest.mark.slow
def test_hostile_corpus_over_every_write_endpoint(world: World) -> None:
    """One test walks the whole corpus (a test per case would rebuild the app some
    thousand times); a failure lists every case that went wrong."""
    client = TestClient(create_app(world.ctx), raise_server_exceptions=False)
    client.headers.update(world.admin.headers)
    failures: list[str] = []
    accepted = 0
    for case in CASES:
        body = _body(case, world)
        before = _fingerprint(world.ctx)
        response = _send(client, case, world, body)
        label = f"{case.operation} {case.field} {case.placement} {case.hostile}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            continue
        if response.status_code < 400:
            accepted += 1
            _check_renders(world)
            continue
        if response.status_code in _REFUSED_FOR_OTHER_REASONS:
            continue  # the value passed validation; the service said no (a wrong password)
        problem = response.json()
        fields = [e["field"] for e in problem.get("errors", [])]
        whole_body = case.hostile == "deep nesting" and fields == ["body"]
        named = (
            response.status_code == 413
            or whole_body
            or any(f == case.field or f.startswith(f"{case.field}.") for f in fields)
        )
        if not response.headers["content-type"].startswith("application/problem+json"):
            failures.append(f"{label}: not problem+json")
        elif not named:
            failures.append(f"{label}: {response.status_code} names {fields}, not {case.field}")
        elif _fingerprint(world.ctx) != before:
            failures.append(f"{label}: refused ({response.status_code}) but wrote to the database")
    assert not failures, f"{len(failures)} of {len(CASES)} cases failed:\n" + "\n".join(failures)
    assert accepted < len(CASES)  # the corpus is hostile: most of it must be refused


#: Reads whose query parameters are checked values (not free filters): each hostile value
#: class sent as the parameter must be a 422 problem naming it, with nothing written.
QUERY_READS = (
    ("/api/v1/servers/{server_id}/history", "window"),
    ("/api/v1/fleet/history", "window"),
)


@pytest.mark.parametrize(("path", "parameter"), QUERY_READS, ids=[p for p, _ in QUERY_READS])
def test_hostile_query_values_are_refused_naming_the_parameter(
    world: World, path: str, parameter: str
) -> None:
    client = TestClient(create_app(world.ctx), raise_server_exceptions=False)
    client.headers.update(world.admin.headers)
    failures = []
    for name, value in HOSTILE.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if name == "deep nesting":
            text = _DEEP_TEXT
        # httpx refuses URLs over 64 KiB (as servers' request-line limits do): as long as
        # a URL can be
        encoded = quote(text.encode("utf-8", "surrogatepass"), safe="")[:60_000]
        before = _fingerprint(world.ctx)
        url = f"{path.replace('{server_id}', world.server_id)}?{parameter}={encoded}"
        response = client.get(url)
        fields = [e["field"] for e in response.json().get("errors", [])]
        if response.status_code != 422 or fields != [parameter]:
            failures.append(f"{name}: {response.status_code} names {fields}")
        elif not response.headers["content-type"].startswith("application/problem+json"):
            failures.append(f"{name}: not problem+json")
        elif _fingerprint(world.ctx) != before:
            failures.append(f"{name}: wrote to the database")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_hostile_corpus_over_the_routing_check(world: World) -> None:
    """GET /api/v1/routing/authorize (nginx's auth_request) takes one input, the
    X-Original-URI header: each hostile value class, alone and as a route's tail, is a
    403 naming the header or the route (nginx passes only 2xx, 401 and 403 on), never a
    500 and never a write."""
    client = TestClient(create_app(world.ctx), raise_server_exceptions=False)
    client.headers.update(world.admin.headers)
    failures: list[str] = []
    for name, value in HOSTILE.items():
        text = _DEEP_TEXT if value == _DEEP_MARK else json.dumps(value).strip('"')
        for uri in (text, f"/u/someone/{world.workload_id}/80/{text}"):
            try:
                header = uri.encode("latin-1")
            except UnicodeEncodeError:
                continue  # no HTTP client can send it as a header
            before = _fingerprint(world.ctx)
            response = client.get("/api/v1/routing/authorize", headers={"X-Original-URI": header})
            label = f"routing X-Original-URI {name} {uri[:20]!r}"
            if response.status_code != 403:
                failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            if _fingerprint(world.ctx) != before:
                failures.append(f"{label}: wrote to the database")
    assert not failures, "\n".join(failures)


#: The routing login's two inputs (services/routing/login.py): ``next`` on the dashboard,
#: a route URL; ``ticket`` through the routing host, a signed single-use token.
ROUTING_LOGIN_INPUTS = (
    ("/api/v1/routing/login", "next", {422}),
    ("/api/v1/routing/session", "ticket", {401, 422}),
)


@pytest.mark.parametrize(
    ("path", "parameter", "statuses"),
    ROUTING_LOGIN_INPUTS,
    ids=[p for p, _, _ in ROUTING_LOGIN_INPUTS],
)
def test_hostile_values_for_the_routing_login_are_refused_naming_them(
    tmp_path: Path, database_url: str | None, path: str, parameter: str, statuses: set[int]
) -> None:
    """Each hostile value class as ``next`` or ``ticket``, with a dashboard session (so
    only the value can be at fault): a 4xx problem naming the parameter, never a
    redirect (no open redirect, no cookie), never a write."""
    ctx = make_context(
        make_settings(
            tmp_path / "data",
            database_url,
            routing_public_url="https://apps.example.com",
            routing_dashboard_url="https://gpuyard.example.com",
        )
    )
    try:
        client = TestClient(create_app(ctx), raise_server_exceptions=False)
        session = mint_token(ctx, add_user(ctx, "someone@example.com", "some-pass-123"))
        client.cookies.set("gpuyard_session", session)
        failures = []
        for name, value in HOSTILE.items():
            text = _DEEP_TEXT if value == _DEEP_MARK else json.dumps(value).strip('"')
            encoded = quote(text.encode("utf-8", "surrogatepass"), safe="")[:60_000]
            before = _fingerprint(ctx)
            response = client.get(f"{path}?{parameter}={encoded}", follow_redirects=False)
            fields = [e["field"] for e in response.json().get("errors", [])]
            if response.status_code not in statuses or fields != [parameter]:
                failures.append(f"{name}: {response.status_code} names {fields}")
            elif "set-cookie" in response.headers or "location" in response.headers:
                failures.append(f"{name}: refused but redirected or set a cookie")
            elif _fingerprint(ctx) != before:
                failures.append(f"{name}: wrote to the database")
        assert not failures, "\n".join(failures)
    finally:
        ctx.db.dispose()
