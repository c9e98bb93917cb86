"""Every route against every role: allowed where the policy allows, refused otherwise.

ROUTE_ACCESS is written out here on purpose, independently of auth/permissions.py: a new
route fails `test_every_route_is_in_the_access_table` until someone decides who may call
it, and a route without a declared permission stops the app from being built at all.
"""

from __future__ import annotations

import re

import pytest
from factories.app import ADMIN_EMAIL, add_user, mint_token, sqlite_only, user_id_of
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gpuyard.api.app import create_app
from gpuyard.api.authorization import PERMISSION_EXTENSION, ROLES_EXTENSION, check_route_permissions
from gpuyard.services.context import ServiceContext

ANONYMOUS = "anonymous"
ROLES = ("admin", "operator", "user")
ANYONE = frozenset({ANONYMOUS, *ROLES})
SIGNED_IN = frozenset(ROLES)
FLEET = frozenset({"admin", "operator"})
ADMIN = frozenset({"admin"})

# Scoped permissions (own workloads, teams one administers...) are allowed at the route
# for every role that has some scope; the service answers 404/403 per object (tested in
# test_tenancy.py). Invites and team changes are open to team admins of any role.
#: Query strings some routes need to answer at all: the live stream ends only when asked.
QUERIES = {"/api/v1/stream": "?max_s=0.1"}
#: Routes whose "no" past the role gate is a 403 by contract (nginx's auth_request passes
#: only 2xx, 401 and 403 on): allowed roles get the service's 403, which names its input.
SERVICE_403 = {("GET", "/api/v1/routing/authorize"): "X-Original-URI"}

ROUTE_ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/auth/login"): ANYONE,
    ("POST", "/api/v1/auth/register"): ANYONE,
    ("POST", "/api/v1/auth/logout"): SIGNED_IN,
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    ("POST", "/api/v1/invites"): SIGNED_IN,
    ("GET", "/api/v1/invites"): ADMIN,
    ("DELETE", "/api/v1/invites/{invite_id}"): ADMIN,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/users/{user_id}"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    ("DELETE", "/api/v1/users/{user_id}"): ADMIN,
    ("GET", "/api/v1/teams"): SIGNED_IN,
    ("POST", "/api/v1/teams"): ADMIN,
    ("GET", "/api/v1/teams/{team_id}"): SIGNED_IN,
    ("PATCH", "/api/v1/teams/{team_id}"): SIGNED_IN,
    ("DELETE", "/api/v1/teams/{team_id}/invitations/{invitation_id}"): SIGNED_IN,
    ("POST", "/api/v1/teams/{team_id}/members"): SIGNED_IN,
    ("PATCH", "/api/v1/teams/{team_id}/members/{user_id}"): SIGNED_IN,
    ("DELETE", "/api/v1/teams/{team_id}/members/{user_id}"): SIGNED_IN,
    ("GET", "/api/v1/team-invitations"): SIGNED_IN,
    ("POST", "/api/v1/team-invitations/{invitation_id}/accept"): SIGNED_IN,
    ("POST", "/api/v1/team-invitations/{invitation_id}/decline"): SIGNED_IN,
    ("GET", "/api/v1/tokens"): SIGNED_IN,
    ("POST", "/api/v1/tokens"): SIGNED_IN,
    ("DELETE", "/api/v1/tokens/{token_id}"): SIGNED_IN,
    ("GET", "/api/v1/clusters"): SIGNED_IN,
    ("POST", "/api/v1/clusters"): FLEET,
    ("GET", "/api/v1/clusters/{cluster_id}"): SIGNED_IN,
    ("PATCH", "/api/v1/clusters/{cluster_id}"): FLEET,
    ("DELETE", "/api/v1/clusters/{cluster_id}"): FLEET,
    ("GET", "/api/v1/fleet/overview"): SIGNED_IN,
    ("GET", "/api/v1/servers"): SIGNED_IN,
    ("POST", "/api/v1/servers"): FLEET,
    ("GET", "/api/v1/servers/{server_id}"): SIGNED_IN,
    ("GET", "/api/v1/servers/{server_id}/events"): SIGNED_IN,
    ("GET", "/api/v1/servers/{server_id}/history"): SIGNED_IN,
    ("GET", "/api/v1/fleet/history"): SIGNED_IN,
    ("PATCH", "/api/v1/servers/{server_id}"): FLEET,
    ("DELETE", "/api/v1/servers/{server_id}"): FLEET,
    ("GET", "/api/v1/servers/{server_id}/images"): SIGNED_IN,
    ("DELETE", "/api/v1/servers/{server_id}/images"): FLEET,
    ("POST", "/api/v1/servers/{server_id}/images/pull"): FLEET,
    ("POST", "/api/v1/servers/{server_id}/images/build"): FLEET,
    ("POST", "/api/v1/servers/{server_id}/images/push"): FLEET,
    ("POST", "/api/v1/servers/{server_id}/cleanup"): FLEET,
    ("PUT", "/api/v1/servers/{server_id}/ssh"): FLEET,
    ("GET", "/api/v1/servers/{server_id}/ssh"): FLEET,
    ("DELETE", "/api/v1/servers/{server_id}/ssh"): FLEET,
    ("DELETE", "/api/v1/servers/{server_id}/ssh/host-key"): FLEET,
    ("GET", "/api/v1/images"): SIGNED_IN,
    ("POST", "/api/v1/images"): FLEET,
    ("GET", "/api/v1/images/{image_id}"): SIGNED_IN,
    ("PATCH", "/api/v1/images/{image_id}"): FLEET,
    ("DELETE", "/api/v1/images/{image_id}"): FLEET,
    ("GET", "/api/v1/registries"): FLEET,
    ("POST", "/api/v1/registries"): ADMIN,
    ("GET", "/api/v1/registries/{registry_id}"): FLEET,
    ("DELETE", "/api/v1/registries/{registry_id}"): ADMIN,
    ("GET", "/api/v1/culling/policies"): FLEET,
    ("PUT", "/api/v1/culling/policies/image-types/{image_type}"): ADMIN,
    ("DELETE", "/api/v1/culling/policies/image-types/{image_type}"): ADMIN,
    ("GET", "/api/v1/teams/{team_id}/culling"): SIGNED_IN,
    ("PUT", "/api/v1/teams/{team_id}/culling"): SIGNED_IN,
    ("DELETE", "/api/v1/teams/{team_id}/culling"): SIGNED_IN,
    ("GET", "/api/v1/workloads/{workload_id}/culling"): SIGNED_IN,
    ("GET", "/api/v1/pools"): FLEET,
    ("POST", "/api/v1/pools"): FLEET,
    ("GET", "/api/v1/pools/{pool_id}"): FLEET,
    ("PATCH", "/api/v1/pools/{pool_id}"): FLEET,
    ("DELETE", "/api/v1/pools/{pool_id}"): FLEET,
    ("POST", "/api/v1/pools/{pool_id}/reinitialise"): FLEET,
    ("POST", "/api/v1/pools/{pool_id}/members/{workload_id}/release"): FLEET,
    ("POST", "/api/v1/workloads"): SIGNED_IN,
    ("POST", "/api/v1/workloads/plan"): SIGNED_IN,
    ("GET", "/api/v1/workloads"): SIGNED_IN,
    ("GET", "/api/v1/workloads/{workload_id}"): SIGNED_IN,
    ("PATCH", "/api/v1/workloads/{workload_id}"): SIGNED_IN,
    ("DELETE", "/api/v1/workloads/{workload_id}"): SIGNED_IN,
    ("POST", "/api/v1/workloads/{workload_id}/stop"): SIGNED_IN,
    ("GET", "/api/v1/workloads/{workload_id}/events"): SIGNED_IN,
    ("GET", "/api/v1/stream"): SIGNED_IN,
    ("GET", "/api/v1/workloads/{workload_id}/logs"): SIGNED_IN,
    ("GET", "/api/v1/workloads/{workload_id}/files"): SIGNED_IN,
    ("GET", "/api/v1/workloads/{workload_id}/files/{path}"): SIGNED_IN,
    ("PUT", "/api/v1/workloads/{workload_id}/files/{path}"): SIGNED_IN,
    ("DELETE", "/api/v1/workloads/{workload_id}/files/{path}"): SIGNED_IN,
    ("GET", "/api/v1/queue"): SIGNED_IN,
    ("GET", "/api/v1/queue/{workload_id}"): SIGNED_IN,
    ("GET", "/api/v1/fairshare"): SIGNED_IN,
    ("GET", "/api/v1/audit"): FLEET,
    ("GET", "/api/v1/audit/verify"): ADMIN,
    ("GET", "/api/v1/routing/authorize"): SIGNED_IN,
    ("GET", "/api/v1/routing/login"): ANYONE,
    ("GET", "/api/v1/routing/session"): ANYONE,
    ("GET", "/healthz"): ANYONE,
    ("GET", "/readyz"): ANYONE,
}


def _operations(app: FastAPI) -> dict[tuple[str, str], dict[str, object]]:
    return {
        (method.upper(), path): operation
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }


@sqlite_only
def test_every_route_is_in_the_access_table(ctx: ServiceContext) -> None:
    operations = _operations(create_app(ctx))
    assert set(operations) == set(ROUTE_ACCESS), (
        "routes and the access table differ: "
        f"new {sorted(set(operations) - set(ROUTE_ACCESS))}, "
        f"gone {sorted(set(ROUTE_ACCESS) - set(operations))}"
    )
    for route, operation in operations.items():
        assert operation.get(PERMISSION_EXTENSION), f"{route} declares no permission"
        documented = set(operation[ROLES_EXTENSION])  # type: ignore[arg-type]
        expected = {"anyone"} if ANONYMOUS in ROUTE_ACCESS[route] else set(ROUTE_ACCESS[route])
        assert documented == expected, route


def test_every_route_against_every_role(ctx: ServiceContext) -> None:
    user_ids = {
        "admin": user_id_of(ctx, ADMIN_EMAIL),
        "operator": add_user(ctx, "op@example.com", "operator-pass-1", role="operator"),
        "user": add_user(ctx, "dev@example.com", "developer-pass-1", role="user"),
    }
    client = TestClient(create_app(ctx))
    checked = 0
    for (method, path), allowed in ROUTE_ACCESS.items():
        concrete = re.sub(r"\{[^}]+\}", "some-id", path) + QUERIES.get(path, "")
        for role in (ANONYMOUS, *ROLES):
            headers = {}
            if role != ANONYMOUS:  # a fresh session each time: logout revokes the one it uses
                headers["Authorization"] = f"Bearer {mint_token(ctx, user_ids[role])}"
            response = client.request(method, concrete, json={}, headers=headers)
            where = f"{method} {path} as {role}: {response.status_code} {response.text[:200]}"
            if role in allowed and (method, path) in SERVICE_403:
                assert response.status_code != 401, where
                assert response.status_code != 403 or SERVICE_403[(method, path)] in where
            elif role in allowed:
                assert response.status_code not in (401, 403), where
            elif role == ANONYMOUS:
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"] == "Bearer"
            else:
                assert response.status_code == 403, where
            checked += 1
    assert checked == 4 * len(ROUTE_ACCESS)


@sqlite_only
def test_a_route_without_a_permission_stops_the_app(ctx: ServiceContext) -> None:
    app = create_app(ctx)

    @app.get("/api/v1/sneaky")
    def sneaky() -> dict[str, str]:
        return {"secret": "data"}

    with pytest.raises(RuntimeError, match=r"/api/v1/sneaky must declare exactly one permission"):
        check_route_permissions(app)
