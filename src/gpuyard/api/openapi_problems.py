"""The OpenAPI document states every error an operation really answers, as problem+json.

FastAPI documents only the success and its own 422 (as application/json with a schema we
never send). Every error gpuyard sends goes through one renderer (api/errors.py) as RFC
9457 problem+json, and which statuses an operation can answer follows from what it is:
- 422: any operation (a parameter or a body field out of range, or unstorable text);
- 401 and 403: any operation behind a permission that is not public (no or a bad
  credential; a role without the permission, or a cookie session without its CSRF token);
- 404: an operation on an object named in its path (it does not exist, or the caller may
  not know that it does);
- 409: a write (a duplicate name, a status change the state machine refuses, an object
  still in use);
- 408 and 413: an operation that reads a request body (it stopped arriving; too large);
- 401 and 429: logging in (a wrong password; throttled per account and address), 429
  registering (throttled the same way);
- 404 and 401: the routing login and its ticket redemption (no login flow configured;
  a used, expired or forged ticket);
- 400, 404, 409, 413 and 502: an operation relayed to a workload's runtime (its agent's
  refusal is relayed; an agent that fails or cannot be reached is a bad gateway).
The schemathesis run in the test suite holds the document to this: an answer with a
status or a content type the document does not state fails it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from gpuyard.api.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names each field at fault.",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_WRITES = {"post", "put", "patch", "delete"}
#: Public operations that answer more than their neighbours, by operation id.
_OWN_STATUSES = {
    "auth-login": {401, 429},
    "auth-register": {429},
    "routing-login": {404},
    "routing-session": {401, 404},
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until the next attempt is allowed",
        "schema": {"type": "string"},
    }
}


def error_statuses(
    method: str, path: str, operation: dict[str, Any], public: bool, relayed: bool
) -> set[int]:
    """The error statuses this operation can answer (see the module docstring)."""
    statuses = {422}
    if not public:
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    if "requestBody" in operation:
        statuses |= {408, 413}
    statuses |= _OWN_STATUSES.get(operation.get("operationId", ""), set())
    if relayed:
        statuses |= {400, 404, 409, 413, 502}
    return statuses


def document_problems(
    app: FastAPI, public: set[tuple[str, str]], relayed: set[tuple[str, str]]
) -> None:
    """Make ``app.openapi()`` state each operation's error answers as problem+json.
    ``public`` holds the (METHOD, path) pairs that need no credential, ``relayed`` those
    that relay a runtime's answer."""
    generate = app.openapi

    def openapi_with_problems() -> dict[str, Any]:
        if app.openapi_schema is not None and "Problem" in app.openapi_schema.get(
            "components", {}
        ).get("schemas", {}):
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                key = (method.upper(), path)
                statuses = error_statuses(method, path, operation, key in public, key in relayed)
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses):
                    answer: dict[str, Any] = {
                        "description": HTTPStatus(status).phrase,
                        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
                    }
                    if status == 429:
                        answer["headers"] = _RETRY_AFTER
                    responses[str(status)] = answer
        schemas = schema["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi_with_problems  # type: ignore[method-assign]
