"""From a ContainerSpec to the arguments of ``docker.containers.create``: pure, no I/O.

Security defaults live here, in one place: never privileged; every capability dropped, then a
minimal set added back (plus what an admin allowed in ``cap_add``); no-new-privileges; the
workload's files directory is the only host path mounted (at the spec's ``files_path``,
checked by ``ContainerSpec``); ports are published on the agent's
publish address only; swap is off (memswap == memory); a pids limit always; no restart
policy (the control plane decides what happens after an exit); bounded json-file logs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.types import DeviceRequest, LogConfig, Mount

from gpuyard.agent.models import (
    LABEL_AGENT,
    LABEL_GPUS,
    LABEL_REPLICA,
    LABEL_WORKLOAD,
    ContainerSpec,
    GpuInfo,
)
from gpuyard.domain.errors import FieldError, InvalidInput
from gpuyard.domain.files_paths import DEFAULT_FILES_PATH

#: Where a spec that names no files_path gets its files directory.
WORKSPACE_MOUNT = DEFAULT_FILES_PATH
MIB = 1024 * 1024
#: Added back after ``cap_drop: ALL``: enough for images that start as root and drop to a
#: user (nginx, apache, postgres), bind ports below 1024 and chown their files. Left out of
#: Docker's own default set: NET_RAW, MKNOD, SYS_CHROOT, SETPCAP, SETFCAP, AUDIT_WRITE.
DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
)
#: NVIDIA_VISIBLE_DEVICES for containers without GPUs: on hosts whose default runtime is
#: nvidia, an image that sets NVIDIA_VISIBLE_DEVICES=all (every CUDA base image) would
#: otherwise see every GPU of the host.
NO_GPUS = "void"
LOG_MAX_SIZE = "20m"
LOG_MAX_FILES = "3"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class HostPolicy:
    """The agent-wide settings that shape every container."""

    agent_name: str
    publish_address: str = "127.0.0.1"
    default_pids_limit: int = 4096
    storage_opt_size: bool = False


def container_name(agent_name: str, spec: ContainerSpec) -> str:
    """``gy-<agent>-<workload>-<replica>``: unique per agent even when agents share a dockerd."""
    return _NAME_UNSAFE.sub("-", f"gy-{agent_name}-{spec.workload_id}-{spec.replica}")


def resolve_gpu_uuids(spec: ContainerSpec, gpus: Sequence[GpuInfo]) -> list[str]:
    """The UUIDs of the GPUs a spec reserves, checked against this host's inventory.

    A spec names GPUs by index (the reservation's ``gpu_indices``), by UUID, or both; both must
    then name the same devices. Anything this host does not have is a 422 naming the field.
    """
    by_index = {gpu.index: gpu.uuid for gpu in gpus}
    known = set(by_index.values())
    have = ", ".join(f"{g.index}={g.uuid}" for g in gpus) or "none"
    missing_index = [i for i in spec.gpu_indices if i not in by_index]
    if missing_index:
        raise _gpu_error("gpu_indices", f"GPU index {missing_index} not on this host (has {have})")
    unknown = [u for u in spec.gpu_uuids if u not in known]
    if unknown:
        raise _gpu_error("gpu_uuids", f"GPU {unknown} not on this host (has {have})")
    from_indices = [by_index[i] for i in spec.gpu_indices]
    if spec.gpu_uuids and from_indices and set(spec.gpu_uuids) != set(from_indices):
        raise _gpu_error(
            "gpu_uuids", f"gpu_uuids {spec.gpu_uuids} and gpu_indices {spec.gpu_indices} differ"
        )
    return list(spec.gpu_uuids) or from_indices


def _gpu_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, [FieldError(field, message)])


def labels_for(agent_name: str, spec: ContainerSpec, gpu_uuids: Sequence[str]) -> dict[str, str]:
    return {
        **spec.labels,
        LABEL_WORKLOAD: spec.workload_id,
        LABEL_REPLICA: str(spec.replica),
        LABEL_AGENT: agent_name,
        LABEL_GPUS: ",".join(gpu_uuids),
    }


def build_create_kwargs(
    spec: ContainerSpec, *, gpu_uuids: Sequence[str], workspace: Path, policy: HostPolicy
) -> dict[str, Any]:
    """Keyword arguments for ``DockerClient.containers.create`` (image first, then the rest)."""
    environment = {**spec.env, "NVIDIA_VISIBLE_DEVICES": ",".join(gpu_uuids) or NO_GPUS}
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "command": spec.command,
        "name": spec.name or container_name(policy.agent_name, spec),
        "detach": True,
        "environment": environment,
        "labels": labels_for(policy.agent_name, spec, gpu_uuids),
        "pids_limit": spec.pids_limit or policy.default_pids_limit,
        "privileged": False,
        "cap_drop": ["ALL"],
        "cap_add": sorted({*DEFAULT_CAPABILITIES, *spec.cap_add}),
        "security_opt": ["no-new-privileges"],
        "mounts": [Mount(target=spec.files_path, source=str(workspace), type="bind")],
        "ports": {
            f"{p.container_port}/{p.protocol}": (policy.publish_address, p.host_port)
            for p in spec.ports
        },
        "restart_policy": {"Name": "no"},
        "log_config": LogConfig(
            type=LogConfig.types.JSON, config={"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILES}
        ),
    }
    if spec.cpu_milli:
        kwargs["nano_cpus"] = spec.cpu_milli * 1_000_000
    if spec.ram_mib:
        kwargs["mem_limit"] = spec.ram_mib * MIB
        kwargs["memswap_limit"] = spec.ram_mib * MIB  # equal to memory: no swap at all
    if gpu_uuids:
        kwargs["device_requests"] = [
            DeviceRequest(driver="nvidia", device_ids=list(gpu_uuids), capabilities=[["gpu"]])
        ]
    if policy.storage_opt_size and spec.storage_mib:
        kwargs["storage_opt"] = {"size": f"{spec.storage_mib}M"}
    return kwargs
