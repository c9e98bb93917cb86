"""A small synchronous client for the gpuyard REST API, used by the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from gpuyard.cli.credentials import CredentialsUnreadable, load_credentials


class ApiError(Exception):
    """A problem+json answer (or a transport failure), ready to print."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


NOT_LOGGED_IN = "not logged in: run `gpuyard login EMAIL` (or set GPUYARD_TOKEN)"
SESSION_ENDED = "your session has ended (expired or revoked): run `gpuyard login EMAIL` again"
#: Exactly how ids are made (uuid4 hex): a reference that could be an id or its prefix.
ID_ALPHABET = frozenset("0123456789abcdef")
FULL_ID_LENGTH = 32


def refusal(response: httpx.Response, had_token: bool) -> ApiError:
    """The ApiError for a 4xx/5xx answer; a 401 says how to log in instead of an HTTP recipe."""
    if response.status_code == 401:
        return ApiError(401, SESSION_ENDED if had_token else NOT_LOGGED_IN)
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, response.text)
    if not isinstance(body, dict):
        return ApiError(response.status_code, str(body))
    return ApiError(response.status_code, str(body.get("detail", body)), body.get("errors"))


def could_be_id(ref: str) -> bool:
    """Whether ``ref`` is an id or the start of one (the CLI shows 8-character prefixes)."""
    return 0 < len(ref) <= FULL_ID_LENGTH and set(ref) <= ID_ALPHABET


class ApiClient:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        try:
            creds = load_credentials()
        except CredentialsUnreadable as exc:
            raise ApiError(400, str(exc)) from exc
        self.context = creds.context
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
            raise refusal(response, bool(self.token))
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
                    raise refusal(response, bool(self.token))
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
        """A workload by id, by a unique id prefix (as the tables show them), or by a name
        unique among the visible ones."""
        if len(ref) == FULL_ID_LENGTH and could_be_id(ref):
            return dict(self.get(f"/api/v1/workloads/{ref}"))
        named = self.get("/api/v1/workloads", name=ref, limit=2)["data"] if ref else []
        if len(named) == 1:
            return dict(named[0])
        if len(named) > 1:
            raise ApiError(409, f"several workloads are named {ref!r}; use the id")
        if could_be_id(ref):
            found = self.get("/api/v1/workloads", id_prefix=ref, limit=2)["data"]
            if len(found) == 1:
                return dict(found[0])
            if found:
                raise ApiError(409, f"{ref!r} starts several workload ids; give more of it")
        raise ApiError(404, f"no workload with id, id prefix or name {ref!r}")

    def resolve_server(self, ref: str) -> dict[str, Any]:
        """A server by id, unique id prefix or name."""
        if len(ref) == FULL_ID_LENGTH and could_be_id(ref):
            return dict(self.get(f"/api/v1/servers/{ref}"))
        matches = [
            s
            for s in self.all_pages("/api/v1/servers")
            if s["name"] == ref or (could_be_id(ref) and s["id"].startswith(ref))
        ]
        named = [s for s in matches if s["name"] == ref]
        if len(named) == 1:
            return named[0]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ApiError(409, f"{ref!r} matches several servers; give more of the id")
        raise ApiError(404, f"no server with id, id prefix or name {ref!r}")

    def resolve_cluster(self, ref: str) -> dict[str, Any]:
        """A cluster by name, id or unique id prefix."""
        return self.resolve_listed("/api/v1/clusters", ref, "cluster")

    def resolve_listed(
        self, path: str, ref: str, kind: str, name_key: str = "name", **params: Any
    ) -> dict[str, Any]:
        """The one item of a (small) list whose ``name_key`` is ``ref`` (case-insensitive
        for e-mail addresses), else whose id starts with ``ref``."""
        every = self.all_pages(path, **params)
        fold = name_key == "email"
        wanted = ref.lower() if fold else ref
        named = [i for i in every if (str(i[name_key]).lower() if fold else i[name_key]) == wanted]
        by_id = [i for i in every if could_be_id(ref) and str(i["id"]).startswith(ref)]
        for found in (named, by_id):
            if len(found) == 1:
                return found[0]
        if by_id:
            raise ApiError(409, f"{ref!r} starts several {kind} ids; give more of it")
        label = "e-mail" if fold else name_key
        raise ApiError(404, f"no {kind} with {label}, id or id prefix {ref!r}")

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list (pages of 500)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, limit=500, offset=len(items), **params)
            items += page["data"]
            if not page["data"] or len(items) >= page["count"]:
                return items
