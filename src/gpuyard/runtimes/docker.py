"""The docker runtime: the control plane's side of ``gpuyard agent``.

``AgentClient`` is plain blocking HTTP (httpx) to one agent: bearer token, timeouts, and
retries with exponential backoff and jitter on connection errors, timeouts and 500/503/504.
A 502 from the agent is Docker's definitive answer relayed, and a 4xx is final: neither is
retried. Call it between transactions, never inside one: it is network I/O.

``DockerRuntime`` implements the Runtime protocol over one client per server. Its handles are
``"<server_name>/<container_id>"`` so that ``stop`` knows which agent to ask. The wire
shapes are the agent's own models (``gpuyard.agent.models``), imported, never copied, and
they stop here: what the runtime hands back is converted into the runtime-neutral records
of ``gpuyard.domain.runtime_records`` (``observation_of``, ``host_inventory_of``).

A docker server is registered by its agent: ``agent_url`` and ``agent_token`` (both
required), and its capacity is the agent's inventory; its replicas' published ports are
reached at the agent URL's host.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from websockets.asyncio.client import connect as websocket_connect

from gpuyard.agent.models import (
    ContainerInfo,
    ContainerSpec,
    ContainersPublic,
    ContainerStats,
    FileEntry,
    FilesPublic,
    Inventory,
    PortSpec,
)
from gpuyard.domain.culling import ReplicaUsage, ReplicaUsageQuery
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.replica_access import (
    ExecStream,
    ExecTarget,
    WorkspaceFile,
    WorkspaceListing,
)
from gpuyard.domain.runtime_records import (
    HostInventory,
    ReachedServer,
    ReplicaObservation,
    ServerEndpoint,
)
from gpuyard.domain.usage import ServerLoad, UsageReading
from gpuyard.runtimes.agent_records import host_inventory_of, observation_of
from gpuyard.runtimes.base import (
    RegistrationFields,
    ReplicaSpec,
    RuntimeFailure,
    RuntimeUnreachable,
)
from gpuyard.runtimes.docker_cleanup import AgentCleanup
from gpuyard.runtimes.docker_images import AgentImages

#: The registration fields of a docker server: where its agent listens, and its token.
AGENT_URL = "agent_url"
AGENT_TOKEN = "agent_token"  # noqa: S105 (a field name, not a secret)
AGENT_TLS_CERT = "agent_tls_cert"

RETRY_STATUSES = frozenset({500, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
#: Creating a container may pull nothing but still takes Docker a few seconds under load.
CREATE_TIMEOUT = httpx.Timeout(60.0, connect=3.0)


class AgentError(RuntimeFailure):
    """The agent answered with a problem (or could not be reached: see AgentUnreachable)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str = "Agent error",
        type_: str = "about:blank",
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.errors = errors or []

    @classmethod
    def from_response(cls, response: httpx.Response) -> AgentError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return cls(
            response.status_code,
            str(body.get("detail") or response.text[:300] or response.reason_phrase),
            title=str(body.get("title") or response.reason_phrase or "Agent error"),
            type_=str(body.get("type") or "about:blank"),
            errors=list(body.get("errors") or []),
        )


class AgentUnreachable(AgentError, RuntimeUnreachable):
    """No answer after every retry: the health loop counts this as a missed probe."""

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(503, f"agent at {url} unreachable: {cause}", title="Agent unreachable")


def pinned_tls(certificate: str) -> ssl.SSLContext:
    """A TLS context that trusts exactly ``certificate`` (PEM: an agent's self-signed one,
    pinned at registration) and nothing else, so no host name check is needed: no other
    certificate, whatever names it carries, verifies. ValueError when it is no PEM
    certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA loaded: none but this one
    context.load_verify_locations(cadata=_only_certificate(certificate))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _only_certificate(text: str) -> str:
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    stripped = text.strip()
    if not (stripped.startswith(begin) and stripped.endswith(end)) or stripped.count(begin) != 1:
        raise ValueError("one PEM certificate (-----BEGIN CERTIFICATE----- ...)")
    return stripped + "\n"


class AgentClient:
    """Blocking client of one agent. Thread-safe (one httpx.Client); close it when done.
    With ``tls_cert`` (an https agent's pinned certificate), only that certificate is
    trusted, for requests and for exec sessions alike."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff_s: float = 0.2,
        backoff_max_s: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        tls_cert: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tls = pinned_tls(tls_cert) if tls_cert else None
        self._token = token
        self._retries = retries
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            verify=self._tls if self._tls is not None else True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1, 2, ...): doubling, capped, +-20 %."""
        base = min(self._backoff_s * 2.0 ** (attempt - 1), self._backoff_max_s)
        return base * random.uniform(0.8, 1.2)

    def _request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        attempts = 1 + (self._retries if retry else 0)
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise AgentUnreachable(self.base_url, exc) from exc
            else:
                if response.status_code not in RETRY_STATUSES or attempt == attempts:
                    if response.status_code >= 400:
                        raise AgentError.from_response(response)
                    return response
            self._sleep(self.backoff(attempt))
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET ``path`` (with retries) and decode its JSON."""
        return self._json("GET", path, **kwargs)

    def post_json(self, path: str, **kwargs: Any) -> Any:
        """POST ``path`` (with retries unless ``retry=False``) and decode its JSON."""
        return self._json("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> None:
        """DELETE ``path`` (with retries unless ``retry=False``: deleting is idempotent, but a
        retry after a lost answer gets 404); AgentError on a refusal."""
        self._request("DELETE", path, **kwargs)

    @contextmanager
    def open_stream(
        self, method: str, path: str, *, timeout: httpx.Timeout, **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """An open streamed response (no retries: the body may not be sent twice);
        AgentError when the agent refuses, AgentUnreachable when it does not answer."""
        try:
            with self._http.stream(method, path, timeout=timeout, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise AgentError.from_response(response)
                yield response
        except httpx.TransportError as exc:
            raise AgentUnreachable(self.base_url, exc) from exc

    # -- host ----------------------------------------------------------------------------

    def healthz(self, *, retry: bool = False) -> dict[str, Any]:
        """The agent's liveness answer (no retries by default: the health loop counts misses)."""
        result: dict[str, Any] = self._json("GET", "/healthz", retry=retry)
        return result

    def inventory(self, *, retry: bool = True) -> Inventory:
        """What the host has; ``retry=False`` for the health loop, which counts misses."""
        return Inventory.model_validate(self._json("GET", "/v1/inventory", retry=retry))

    # -- containers ----------------------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        """Create and start (idempotent by workload + replica, so retrying is safe)."""
        body = spec.model_dump(mode="json")
        data = self._json("POST", "/v1/containers", json=body, timeout=CREATE_TIMEOUT)
        return ContainerInfo.model_validate(data)

    def get_container(self, container_id: str) -> ContainerInfo:
        return ContainerInfo.model_validate(self._json("GET", f"/v1/containers/{_q(container_id)}"))

    def container_stats(self, container_id: str) -> ContainerStats:
        path = f"/v1/containers/{_q(container_id)}/stats"
        return ContainerStats.model_validate(self._json("GET", path))

    def list_containers(self, workload_id: str | None = None) -> list[ContainerInfo]:
        params = {"workload_id": workload_id} if workload_id else None
        data = self._json("GET", "/v1/containers", params=params)
        return ContainersPublic.model_validate(data).data

    def stop_container(self, container_id: str, grace_s: float) -> ContainerInfo:
        timeout = httpx.Timeout(grace_s + 30.0, connect=3.0)
        data = self._json(
            "POST",
            f"/v1/containers/{_q(container_id)}/stop",
            json={"grace_s": grace_s},
            timeout=timeout,
        )
        return ContainerInfo.model_validate(data)

    def set_labels(self, container_id: str, labels: dict[str, str]) -> ContainerInfo:
        """Labels over the container's own, kept by the agent (warm pool handovers)."""
        data = self._json(
            "PUT", f"/v1/containers/{_q(container_id)}/labels", json={"labels": labels}
        )
        return ContainerInfo.model_validate(data)

    def remove_container(self, container_id: str) -> bool:
        """Remove (killing it if it runs). False when it was already gone."""
        try:
            self._request("DELETE", f"/v1/containers/{_q(container_id)}", timeout=CREATE_TIMEOUT)
        except AgentError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    @contextmanager
    def logs(
        self, container_id: str, *, tail: int | None = None, follow: bool = False
    ) -> Iterator[Iterator[bytes]]:
        """``with client.logs(id, follow=True) as chunks: for chunk in chunks: ...``.

        With ``follow`` there is no read timeout: leaving the ``with`` block closes the stream.
        """
        params: dict[str, Any] = {"follow": follow}
        if tail is not None:
            params["tail"] = tail
        timeout = httpx.Timeout(None, connect=3.0) if follow else DEFAULT_TIMEOUT
        url = f"/v1/containers/{_q(container_id)}/logs"
        with self._http.stream("GET", url, params=params, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise AgentError.from_response(response)
            yield response.iter_bytes()

    def exec_target(
        self, container_id: str, cmd: Iterable[str] | None = None, *, tty: bool = True
    ) -> ExecTarget:
        """The agent's exec WebSocket URL and the headers to open it with."""
        ws_base = "ws" + self.base_url.removeprefix("http")
        query = [("tty", "true" if tty else "false"), *(("cmd", c) for c in cmd or [])]
        params = "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
        url = f"{ws_base}/v1/containers/{_q(container_id)}/exec?{params}"
        headers = {"Authorization": f"Bearer {self._token}"}
        tls = self._tls
        if tls is None:
            return ExecTarget(url=url, headers=headers)

        def opener() -> AbstractAsyncContextManager[ExecStream]:
            # wss:// with the pinned certificate instead of the public CAs.
            return websocket_connect(url, additional_headers=headers, max_size=None, ssl=tls)

        return ExecTarget(url=url, headers=headers, opener=opener)

    # -- files ---------------------------------------------------------------------------

    def list_files(self, workload_id: str, path: str = "") -> FilesPublic:
        data = self._json("GET", f"/v1/workspaces/{_q(workload_id)}/files", params={"path": path})
        return FilesPublic.model_validate(data)

    def upload_file(
        self,
        workload_id: str,
        path: str,
        content: bytes | Iterable[bytes],
        size: int | None = None,
    ) -> FileEntry:
        """Send a file. An iterable ``content`` is streamed and must start over at each
        iteration (a retry sends it again); with its ``size`` the agent can refuse an
        upload over its limits before the first byte."""
        url = f"/v1/workspaces/{_q(workload_id)}/files/{_q(path, safe='/')}"
        headers = {"Content-Length": str(size)} if size is not None else None
        data = self._json("PUT", url, content=content, headers=headers, timeout=CREATE_TIMEOUT)
        return FileEntry.model_validate(data)

    def download_file(self, workload_id: str, path: str) -> bytes:
        url = f"/v1/workspaces/{_q(workload_id)}/files/{_q(path, safe='/')}"
        return self._request("GET", url, timeout=CREATE_TIMEOUT).content

    def delete_file(self, workload_id: str, path: str) -> None:
        self._request("DELETE", f"/v1/workspaces/{_q(workload_id)}/files/{_q(path, safe='/')}")

    def delete_workspace(self, workload_id: str) -> None:
        self._request("DELETE", f"/v1/workspaces/{_q(workload_id)}")


def _q(value: str, safe: str = "") -> str:
    return quote(value, safe=safe)


def make_handle(server_name: str, container_id: str) -> str:
    return f"{server_name}/{container_id}"


def split_handle(handle: str) -> tuple[str, str]:
    """``"gpu-1/3f2a..."`` -> ("gpu-1", "3f2a..."); the container id never has a slash."""
    server, slash, container_id = handle.rpartition("/")
    if not slash or not server or not container_id:
        raise ValueError(f"not a docker runtime handle: {handle!r}")
    return server, container_id


#: CUDA's MPS client limit on device memory, per device as the container numbers them.
MPS_MEMORY_LIMIT_ENV = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"
#: The same limit in MiB, for a workload's own code (or a HAMi-like hook) to read.
GPU_MEMORY_LIMIT_ENV = "GPUYARD_GPU_MEMORY_LIMIT_MIB"


def gpu_memory_env(gpu_memory_mib: int) -> dict[str, str]:
    """The environment that tells a share's processes how much GPU memory they reserved.

    Enforcement is cooperative, as HAMi's is without its CUDA hook: the MPS variable is
    honoured by CUDA clients of an MPS server, and a plain container can allocate beyond it
    (docs/architecture.md). The share's one device is device 0 inside the container."""
    if not gpu_memory_mib:
        return {}
    return {
        MPS_MEMORY_LIMIT_ENV: f"0={gpu_memory_mib}M",
        GPU_MEMORY_LIMIT_ENV: str(gpu_memory_mib),
    }


def container_spec_for(spec: ReplicaSpec) -> ContainerSpec:
    """The agent's ContainerSpec for one replica of a reservation (a share's GPU memory
    reservation as environment: it overrides the workload's own values of those keys)."""
    return ContainerSpec(
        workload_id=spec.workload_id,
        replica=spec.replica,
        image=spec.image,
        command=list(spec.command) if spec.command is not None else None,
        env={**spec.env, **gpu_memory_env(spec.gpu_memory_mib)},
        ports=[
            PortSpec(container_port=port, host_port=spec.host_ports.get(port))
            for port in spec.ports
        ],
        cpu_milli=spec.cpu_milli,
        ram_mib=spec.ram_mib,
        storage_mib=spec.storage_mib,
        pids_limit=spec.pids_limit,
        gpu_indices=list(spec.gpu_indices),
        gpu_uuids=list(spec.gpu_uuids),
        cap_add=list(spec.cap_add),
        labels=dict(spec.labels),
        name=spec.container_name,
        files_path=spec.files_path,
    )


def _file(entry: FileEntry) -> WorkspaceFile:
    return WorkspaceFile(entry.name, entry.path, entry.type, entry.size, entry.modified_at)


def agent_connection(agent_url: str, agent_token: str) -> dict[str, str]:
    """The connection fields registering the docker server of that agent."""
    return {AGENT_URL: agent_url, AGENT_TOKEN: agent_token}


def fetch_inventory(agent_url: str, agent_token: str, tls_cert: str | None = None) -> Inventory:
    """Ask an agent what its host has; InvalidInput naming the registration field at
    fault (``agent_url``, ``agent_token``, ``agent_tls_cert``) when it cannot. With
    ``tls_cert`` the agent must present exactly that certificate."""
    if not agent_url.startswith(("http://", "https://")):
        raise InvalidInput.for_field(AGENT_URL, "must be an http:// or https:// URL")
    if tls_cert and not agent_url.startswith("https://"):
        raise InvalidInput.for_field(AGENT_TLS_CERT, "only for an https:// agent_url")
    try:
        client = AgentClient(agent_url, agent_token, retries=1, tls_cert=tls_cert)
    except (ValueError, ssl.SSLError) as exc:
        raise InvalidInput.for_field(AGENT_TLS_CERT, f"not a usable certificate: {exc}") from exc
    try:
        with client:
            return client.inventory()
    except AgentUnreachable as exc:
        if "CERTIFICATE_VERIFY_FAILED" in exc.detail:
            raise InvalidInput.for_field(
                AGENT_TLS_CERT if tls_cert else AGENT_URL,
                f"the agent at {agent_url} presents another certificate than "
                + ("the one given" if tls_cert else "one a public CA signed (pin its own?)"),
            ) from exc
        raise InvalidInput.for_field(
            AGENT_URL, f"the agent does not answer at {agent_url}: {exc.detail}"
        ) from exc
    except AgentError as exc:
        if exc.status == 401:
            raise InvalidInput.for_field(AGENT_TOKEN, "the agent refused this token (401)") from exc
        raise InvalidInput.for_field(
            AGENT_URL, f"the agent answered {exc.status}: {exc.detail}"
        ) from exc


class DockerRuntime(AgentImages, AgentCleanup):
    """Runs replicas as containers through the agent of each server (its images:
    ``AgentImages``; its host cleanup: ``AgentCleanup``)."""

    starts_instantly = False
    runs_containers = True
    running_when_observed = False
    resizes_in_place = False
    whole_gpus_only = False
    capacity_shared = False
    reports_inventory = True
    connection_fields: tuple[str, ...] = (AGENT_URL, AGENT_TOKEN, AGENT_TLS_CERT)
    #: The connection fields a registration must give (the certificate is optional).
    required_connection_fields = (AGENT_URL, AGENT_TOKEN)

    def __init__(self, client_for: Callable[[str], AgentClient]) -> None:
        """``client_for(server_name)`` returns the (cached) client of that server's agent."""
        self._client_for = client_for

    def check_registration(self, fields: RegistrationFields) -> None:
        """A docker server is reached through its agent, which reports its capacity."""
        for name, given in (("cpu", fields.cpu), ("ram_gb", fields.ram_gb)):
            if given is not None:
                raise InvalidInput.for_field(
                    name, "docker servers report their capacity through the agent"
                )
        if fields.gpus:
            raise InvalidInput.for_field("gpus", "docker servers report their GPUs")
        for name in self.required_connection_fields:
            if not fields.connection.get(name):
                raise InvalidInput.for_field(name, "required for a docker server")

    def reach(self, cluster_id: str, connection: Mapping[str, str]) -> ReachedServer:
        """Ask the agent for its inventory (one retry: a registration is interactive)."""
        agent_url, agent_token = connection[AGENT_URL], connection[AGENT_TOKEN]
        tls_cert = connection.get(AGENT_TLS_CERT) or None
        inventory = host_inventory_of(fetch_inventory(agent_url, agent_token, tls_cert))
        return ReachedServer(ServerEndpoint(agent_url, agent_token, tls_cert), inventory)

    def ports_host(self, endpoint: ServerEndpoint) -> str | None:
        """Containers publish their ports on the agent's host."""
        if not endpoint.address:
            return None
        return urlsplit(endpoint.address).hostname or ""

    def start(self, spec: ReplicaSpec) -> str:
        info = self._client_for(spec.server_name).create_container(container_spec_for(spec))
        return make_handle(spec.server_name, info.id)

    def stop(self, handle: str, grace_period_s: float) -> None:
        server, container_id = split_handle(handle)
        try:
            self._client_for(server).stop_container(container_id, grace_period_s)
        except AgentError as exc:
            if exc.status != 404:  # already gone is stopped enough
                raise

    def resize(self, handle: str, cpu_milli: int, ram_mib: int) -> bool:
        return False  # a container keeps the limits it was created with: replaced

    def relabel(self, handle: str, labels: Mapping[str, str]) -> None:
        server, container_id = split_handle(handle)
        self._client_for(server).set_labels(container_id, dict(labels))

    def remove(self, handle: str) -> bool:
        server, container_id = split_handle(handle)
        return self._client_for(server).remove_container(container_id)

    def inspect(self, handle: str) -> ReplicaObservation | None:
        """The container behind a handle, or None if Docker no longer has it."""
        server, container_id = split_handle(handle)
        try:
            info = self._client_for(server).get_container(container_id)
        except AgentError as exc:
            if exc.status == 404:
                return None
            raise
        return observation_of(info)

    def containers(self, server_name: str) -> list[ReplicaObservation]:
        """Every gpuyard container on one server (for reconcile)."""
        return [observation_of(c) for c in self._client_for(server_name).list_containers()]

    def handle_of(self, server_name: str, container_id: str) -> str:
        return make_handle(server_name, container_id)

    def container_id(self, handle: str) -> str:
        return split_handle(handle)[1]

    def inventory(self, server_name: str, *, retry: bool = True) -> HostInventory:
        return host_inventory_of(self._client_for(server_name).inventory(retry=retry))

    def estimate_usage(self, load: ServerLoad, at: datetime) -> UsageReading | None:
        return None  # real readings: the health probe's inventory (services/usage)

    def replica_usage(self, query: ReplicaUsageQuery, at: datetime) -> ReplicaUsage | None:
        """The container's cumulative CPU time (the agent asks Docker for a one-shot
        stats reading); its GPUs' utilisation is the server's, which the health probe
        already reads (services/culling uses those)."""
        server, container_id = split_handle(query.handle)
        stats = self._client_for(server).container_stats(container_id)
        return ReplicaUsage(cpu_seconds=stats.cpu_seconds if stats.running else None)

    def logs(
        self, handle: str, *, tail: int | None = None, follow: bool = False
    ) -> AbstractContextManager[Iterator[bytes]]:
        server, container_id = split_handle(handle)
        return self._client_for(server).logs(container_id, tail=tail, follow=follow)

    def exec_target(
        self, handle: str, cmd: Iterable[str] | None = None, tty: bool = True
    ) -> ExecTarget:
        server, container_id = split_handle(handle)
        return self._client_for(server).exec_target(container_id, cmd, tty=tty)

    def list_files(self, server_name: str, workload_id: str, path: str = "") -> WorkspaceListing:
        listing = self._client_for(server_name).list_files(workload_id, path)
        entries = tuple(_file(e) for e in listing.data)
        return WorkspaceListing(listing.path, entries, listing.used_bytes, listing.quota_bytes)

    def download_file(self, server_name: str, workload_id: str, path: str) -> bytes:
        return self._client_for(server_name).download_file(workload_id, path)

    def upload_file(
        self,
        server_name: str,
        workload_id: str,
        path: str,
        content: bytes | Iterable[bytes],
        size: int | None = None,
    ) -> WorkspaceFile:
        client = self._client_for(server_name)
        return _file(client.upload_file(workload_id, path, content, size))

    def delete_file(self, server_name: str, workload_id: str, path: str) -> None:
        self._client_for(server_name).delete_file(workload_id, path)
