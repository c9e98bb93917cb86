"""A small synchronous client for the gpuyard REST API, used by the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from gpuyard.cli.credentials import load_credentials


class ApiError(Exception):
    """A problem+json answer (or a transport failure), ready to print."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


class ApiClient:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        creds = load_credentials()
        self.url = (url or creds.url).rstrip("/")
        self.token = token if token is not None else creds.token
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach gpuyard at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                raise ApiError(response.status_code, response.text) from None
            raise ApiError(response.status_code, str(body.get("detail", body)), body.get("errors"))
        return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response (no read timeout: a build may be quiet for minutes);
        ApiError when the server refuses before streaming."""
        try:
            with self._http.stream(
                method, path, timeout=httpx.Timeout(None, connect=10.0), **kwargs
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        raise ApiError(response.status_code, response.text) from None
                    raise ApiError(
                        response.status_code, str(body.get("detail", body)), body.get("errors")
                    )
                yield response
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach gpuyard at {self.url}: {exc}") from exc

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def resolve_workload(self, ref: str) -> dict[str, Any]:
        """A workload by id, or by name when the name is unique among visible ones."""
        try:
            return dict(self.get(f"/api/v1/workloads/{ref}"))
        except ApiError as exc:
            if exc.status != 404:
                raise
        matches = self.get("/api/v1/workloads", name=ref)["data"]
        if len(matches) == 1:
            return dict(matches[0])
        if not matches:
            raise ApiError(404, f"no workload with id or name {ref!r}")
        raise ApiError(409, f"{len(matches)} workloads are named {ref!r}; use the id")
