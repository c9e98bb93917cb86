"""Container lifecycle through the Docker Engine API (docker SDK), for gpuyard containers only.

The manager only ever sees containers labelled ``gpuyard.agent=<this agent's name>``: a
container id that belongs to anything else is "not found". Every method is blocking (the
routers are sync and run in FastAPI's threadpool).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import docker
from docker.errors import APIError
from docker.errors import NotFound as DockerNotFound
from docker.models.containers import Container

from gpuyard.agent.errors import DOCKER_ERRORS, container_not_found, from_docker
from gpuyard.agent.files import Workspaces
from gpuyard.agent.host_config import HostPolicy, build_create_kwargs, resolve_gpu_uuids
from gpuyard.agent.label_overlay import LabelOverlays
from gpuyard.agent.models import (
    LABEL_AGENT,
    LABEL_GPUS,
    LABEL_REPLICA,
    LABEL_WORKLOAD,
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    GpuInfo,
    PublishedPort,
)
from gpuyard.log import get_logger

log = get_logger(__name__)
_NEVER = "0001-01-01T00:00:00Z"
RACE_WAIT_S = 10.0


def container_info(attrs: dict[str, Any]) -> ContainerInfo:
    """A ContainerInfo from ``docker inspect`` data."""
    state = attrs.get("State") or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    status = str(state.get("Status", "unknown"))
    finished = status in {"exited", "dead"}
    return ContainerInfo(
        id=attrs["Id"],
        name=str(attrs.get("Name", "")).lstrip("/"),
        workload_id=labels.get(LABEL_WORKLOAD, ""),
        replica=int(labels.get(LABEL_REPLICA, "0") or 0),
        image=(attrs.get("Config") or {}).get("Image", ""),
        state=status,
        running=bool(state.get("Running")),
        exit_code=int(state.get("ExitCode", 0)) if finished else None,
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        created_at=attrs.get("Created"),
        started_at=_time(state.get("StartedAt")),
        finished_at=_time(state.get("FinishedAt")),
        ports=_ports(attrs),
        gpu_uuids=[u for u in labels.get(LABEL_GPUS, "").split(",") if u],
        labels=labels,
    )


def _time(value: str | None) -> str | None:
    return None if not value or value == _NEVER else value


def _ports(attrs: dict[str, Any]) -> list[PublishedPort]:
    # Live bindings while running; the requested ones (HostConfig) otherwise.
    live = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    wanted = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    ports = []
    for key, bindings in sorted((live or wanted).items()):
        port, _, protocol = key.partition("/")
        for binding in bindings or []:
            if binding.get("HostPort"):
                ports.append(
                    PublishedPort(
                        container_port=int(port),
                        protocol=protocol or "tcp",
                        host_ip=binding.get("HostIp", ""),
                        host_port=int(binding["HostPort"]),
                    )
                )
    return ports


class ContainerManager:
    """Create, start, stop, remove, inspect and list this agent's containers."""

    def __init__(
        self,
        client: docker.DockerClient,
        policy: HostPolicy,
        workspaces: Workspaces,
        gpus: Callable[[], Sequence[GpuInfo]],
        overlays: LabelOverlays | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.workspaces = workspaces
        self._gpus = gpus
        self.overlays = overlays

    def _info(self, attrs: dict[str, Any]) -> ContainerInfo:
        """What the agent reports of a container: Docker's data, its label overlay over
        Docker's labels (``label_overlay.py``)."""
        info = container_info(attrs)
        if self.overlays is None:
            return info
        return info.model_copy(update={"labels": self.overlays.apply(info.id, info.labels)})

    def set_labels(self, container_id: str, labels: dict[str, str]) -> ContainerInfo:
        """Set labels over the container's own (kept by the agent; Docker's are fixed)."""
        container = self._get(container_id)
        if self.overlays is None:
            raise RuntimeError("this agent keeps no label overlays")
        self.overlays.set(container.id or container_id, labels)
        return self._info(container.attrs)

    @property
    def _own(self) -> str:
        return f"{LABEL_AGENT}={self.policy.agent_name}"

    def create(self, spec: ContainerSpec) -> tuple[ContainerInfo, bool]:
        """Create and start a replica; returns (info, created). Idempotent: if a container of
        this workload and replica exists (in any state) it is returned as it is."""
        existing = self._find(spec.workload_id, spec.replica)
        if existing is not None:
            return self._info(existing.attrs), False
        gpu_uuids = resolve_gpu_uuids(
            spec, self._gpus() if spec.gpu_indices or spec.gpu_uuids else []
        )
        workspace = self.workspaces.prepare(spec.workload_id, spec.storage_mib)
        kwargs = build_create_kwargs(
            spec, gpu_uuids=gpu_uuids, workspace=workspace, policy=self.policy
        )
        image = kwargs.pop("image")
        try:
            container = self.client.containers.create(image, **kwargs)
        except APIError as exc:
            raced = self._await_winner(spec) if exc.status_code == 409 else None
            if raced is not None:  # a concurrent request with the same spec won
                return self._info(raced.attrs), False
            raise from_docker(exc, image=image) from exc
        except DOCKER_ERRORS as exc:
            raise from_docker(exc, image=image) from exc
        try:
            container.start()
        except DOCKER_ERRORS as exc:
            with contextlib.suppress(*DOCKER_ERRORS):
                container.remove(force=True)  # a retry must not find a dead half-created one
            raise from_docker(exc) from exc
        container.reload()
        log.info(
            "container started",
            container=(container.id or "")[:12],
            workload=spec.workload_id,
            replica=spec.replica,
            gpus=gpu_uuids,
        )
        return self._info(container.attrs), True

    def get(self, container_id: str) -> ContainerInfo:
        return self._info(self._get(container_id).attrs)

    def stats(self, container_id: str) -> ContainerStats:
        """The container's cumulative CPU time now (one-shot: no second reading waited
        for; a stopped container reports none)."""
        container = self._get(container_id)
        running = container.status == "running"
        if not running:
            return ContainerStats(id=container.id or container_id, running=False)
        try:
            raw = self.client.api.stats(container.id or container_id, stream=False, one_shot=True)
        except DockerNotFound:
            raise container_not_found(container_id) from None
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc
        total = ((raw or {}).get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
        cpu_seconds = total / 1e9 if isinstance(total, int | float) and total >= 0 else None
        return ContainerStats(
            id=container.id or container_id,
            running=True,
            cpu_seconds=cpu_seconds,
            read_at=(raw or {}).get("read"),
        )

    def list(self, workload_id: str | None = None) -> list[ContainerInfo]:
        """This agent's containers (every state), optionally of one workload."""
        labels = [
            self._own,
            LABEL_WORKLOAD if workload_id is None else f"{LABEL_WORKLOAD}={workload_id}",
        ]
        try:
            found = self.client.containers.list(
                all=True, filters={"label": labels}, ignore_removed=True
            )
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc
        if workload_id is None and self.overlays is not None:
            self.overlays.keep_only(c.id for c in found if c.id)
        return [self._info(c.attrs) for c in found]

    def stop(self, container_id: str, grace_s: float) -> ContainerInfo:
        """SIGTERM, then SIGKILL after ``grace_s`` seconds (Docker counts whole seconds)."""
        container = self._get(container_id)
        try:
            container.stop(timeout=math.ceil(grace_s))
            container.reload()
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc
        return self._info(container.attrs)

    def remove(self, container_id: str) -> None:
        """Remove a container, killing it first if it still runs."""
        container = self._get(container_id)
        try:
            container.remove(force=True)
        except DockerNotFound:
            return
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc

    def logs(
        self, container_id: str, *, tail: int | None, follow: bool, timestamps: bool
    ) -> Iterator[bytes]:
        """A blocking stream of log chunks (stdout and stderr); ``close()`` it to stop."""
        container = self._get(container_id)
        try:
            stream: Iterator[bytes] = container.logs(
                stream=True,
                follow=follow,
                tail="all" if tail is None else tail,
                timestamps=timestamps,
            )
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc
        return stream

    def _get(self, container_id: str) -> Container:
        try:
            container = self.client.containers.get(container_id)
        except DockerNotFound:
            raise container_not_found(container_id) from None
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc
        labels = container.labels or {}
        if labels.get(LABEL_AGENT) != self.policy.agent_name or LABEL_WORKLOAD not in labels:
            raise container_not_found(container_id)
        return container

    def _await_winner(self, spec: ContainerSpec) -> Container | None:
        """After a name clash: the container a concurrent create of the same replica is making.
        Docker reserves the name before the container can be listed, and the winner starts it
        right after, so wait (briefly) until it is listed and no longer just "created"."""
        deadline = time.monotonic() + RACE_WAIT_S
        while True:
            found = self._find(spec.workload_id, spec.replica)
            if (found is not None and found.status != "created") or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def _find(self, workload_id: str, replica: int) -> Container | None:
        labels = [self._own, f"{LABEL_WORKLOAD}={workload_id}", f"{LABEL_REPLICA}={replica}"]
        try:
            found = self.client.containers.list(
                all=True, filters={"label": labels}, ignore_removed=True
            )
        except DOCKER_ERRORS as exc:
            raise from_docker(exc) from exc
        return found[0] if found else None
