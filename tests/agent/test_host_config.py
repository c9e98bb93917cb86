"""The container configuration the agent builds from a spec (pure; no Docker needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import _create_container_args
from pydantic import ValidationError

from gpuyard.agent.host_config import (
    DEFAULT_CAPABILITIES,
    WORKSPACE_MOUNT,
    HostPolicy,
    build_create_kwargs,
    container_name,
    resolve_gpu_uuids,
)
from gpuyard.agent.models import ContainerSpec
from gpuyard.domain.errors import InvalidInput

from .builders import fake_gpus, make_spec

POLICY = HostPolicy(agent_name="host-a", publish_address="127.0.0.1", default_pids_limit=512)
WORKSPACE = Path("/srv/agent/workloads/w1/files")
GPUS = fake_gpus(4)


def host_config(spec: ContainerSpec, **policy: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The kwargs, and the HostConfig JSON the docker SDK sends for them (API 1.41)."""
    chosen = HostPolicy(**{**POLICY.__dict__, **policy})
    uuids = resolve_gpu_uuids(spec, GPUS)
    kwargs = build_create_kwargs(spec, gpu_uuids=uuids, workspace=WORKSPACE, policy=chosen)
    create = _create_container_args({**kwargs, "version": "1.41"})
    return kwargs, dict(create["host_config"])


def test_reservation_of_gpus_1_and_3_names_exactly_their_uuids() -> None:
    spec = make_spec(gpu_indices=[1, 3])

    kwargs, config = host_config(spec)

    wanted = [GPUS[1].uuid, GPUS[3].uuid]
    assert config["DeviceRequests"] == [
        {
            "Driver": "nvidia",
            "Count": 0,
            "DeviceIDs": wanted,
            "Capabilities": [["gpu"]],
            "Options": {},
        }
    ]
    assert kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == ",".join(wanted)
    assert kwargs["labels"]["gpuyard.gpus"] == ",".join(wanted)


def test_limits_and_security_defaults() -> None:
    spec = make_spec(cpu_milli=1500, ram_mib=256, env={"A": "1"})

    kwargs, config = host_config(spec)

    assert config["NanoCpus"] == 1_500_000_000
    assert config["Memory"] == config["MemorySwap"] == 256 * 1024 * 1024  # no swap
    assert config["PidsLimit"] == 512  # the agent's default
    assert kwargs["privileged"] is False
    assert not config.get("Privileged")  # the SDK leaves false out; Docker defaults to false
    assert config["CapDrop"] == ["ALL"]
    assert config["CapAdd"] == sorted(DEFAULT_CAPABILITIES)
    assert config["SecurityOpt"] == ["no-new-privileges"]
    assert config["RestartPolicy"] == {"Name": "no"}
    assert config["LogConfig"]["Config"] == {"max-size": "20m", "max-file": "3"}
    assert "DeviceRequests" not in config
    assert kwargs["environment"] == {"A": "1", "NVIDIA_VISIBLE_DEVICES": "void"}
    assert kwargs["labels"] == {
        "gpuyard.workload": spec.workload_id,
        "gpuyard.replica": "0",
        "gpuyard.agent": "host-a",
        "gpuyard.gpus": "",
    }


def test_the_workspace_is_the_only_host_path() -> None:
    _kwargs, config = host_config(make_spec())

    assert config["Mounts"] == [
        {
            "Target": WORKSPACE_MOUNT,
            "Source": str(WORKSPACE),
            "Type": "bind",
            "ReadOnly": False,
        }
    ]
    assert "Binds" not in config
    assert "Devices" not in config


def test_the_workspace_is_mounted_at_the_specs_files_path() -> None:
    _kwargs, config = host_config(make_spec(files_path="/srv/www"))

    assert [(m["Target"], m["Source"]) for m in config["Mounts"]] == [("/srv/www", str(WORKSPACE))]


@pytest.mark.parametrize(
    ("address", "host_port", "binding"),
    [
        pytest.param("127.0.0.1", 8001, {"HostIp": "127.0.0.1", "HostPort": "8001"}, id="loopback"),
        pytest.param("10.0.0.5", 8002, {"HostIp": "10.0.0.5", "HostPort": "8002"}, id="lan"),
        pytest.param("127.0.0.1", None, {"HostIp": "127.0.0.1", "HostPort": ""}, id="any-port"),
    ],
)
def test_ports_publish_on_the_configured_address(
    address: str, host_port: int | None, binding: dict[str, str]
) -> None:
    spec = make_spec(ports=[{"container_port": 80, "host_port": host_port}])

    _kwargs, config = host_config(spec, publish_address=address)

    assert config["PortBindings"] == {"80/tcp": [binding]}


def test_admin_capabilities_add_to_the_default_set() -> None:
    _kwargs, config = host_config(make_spec(cap_add=["sys_chroot", "CAP_AUDIT_WRITE"]))
    assert config["CapAdd"] == sorted({*DEFAULT_CAPABILITIES, "SYS_CHROOT", "AUDIT_WRITE"})


def test_no_limits_when_the_spec_has_none() -> None:
    kwargs, config = host_config(make_spec(cpu_milli=0, ram_mib=0, pids_limit=64))
    assert "nano_cpus" not in kwargs
    assert "mem_limit" not in kwargs
    assert config["PidsLimit"] == 64


def test_storage_opt_only_when_the_host_supports_it() -> None:
    kwargs, _ = host_config(make_spec(storage_mib=2048))
    assert "storage_opt" not in kwargs
    _, config = host_config(make_spec(storage_mib=2048), storage_opt_size=True)
    assert config["StorageOpt"] == {"size": "2048M"}


def test_container_name_is_unique_per_agent() -> None:
    spec = make_spec(workload_id="abc123", replica=2)
    assert container_name("host-a", spec) == "gy-host-a-abc123-2"
    assert container_name("host-b", spec) != container_name("host-a", spec)


@pytest.mark.parametrize(
    ("indices", "uuids", "expected"),
    [
        pytest.param([1, 3], [], [GPUS[1].uuid, GPUS[3].uuid], id="by-index"),
        pytest.param([], [GPUS[2].uuid], [GPUS[2].uuid], id="by-uuid"),
        pytest.param([0], [GPUS[0].uuid], [GPUS[0].uuid], id="both-agree"),
        pytest.param([], [], [], id="no-gpus"),
    ],
)
def test_gpu_resolution(indices: list[int], uuids: list[str], expected: list[str]) -> None:
    spec = make_spec(gpu_indices=indices, gpu_uuids=uuids)
    assert resolve_gpu_uuids(spec, GPUS) == expected


@pytest.mark.parametrize(
    ("indices", "uuids", "host_gpus", "field", "message"),
    [
        pytest.param([4], [], GPUS, "gpu_indices", r"GPU index \[4\] not on this host", id="index"),
        pytest.param([], ["GPU-x"], GPUS, "gpu_uuids", "not on this host", id="uuid"),
        pytest.param([0], [], [], "gpu_indices", r"\(has none\)", id="host-without-gpus"),
        pytest.param([0], [GPUS[1].uuid], GPUS, "gpu_uuids", "differ", id="disagree"),
    ],
)
def test_gpu_resolution_refusals(
    indices: list[int], uuids: list[str], host_gpus: list[Any], field: str, message: str
) -> None:
    spec = make_spec(gpu_indices=indices, gpu_uuids=uuids)
    with pytest.raises(InvalidInput, match=message) as caught:
        resolve_gpu_uuids(spec, host_gpus)
    assert [e.field for e in caught.value.errors] == [field]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"workload_id": "../etc"}, "workload_id", id="workload-id-path"),
        pytest.param({"cap_add": ["NOT_A_CAP"]}, "unknown capabilities", id="capability"),
        pytest.param({"labels": {"gpuyard.agent": "x"}}, "reserved", id="reserved-label"),
        pytest.param({"gpu_indices": [1, 1]}, "listed twice", id="gpu-twice"),
        pytest.param({"cpu_milli": -1}, "cpu_milli", id="negative-cpu"),
        pytest.param({"privileged": True}, "privileged", id="no-such-field"),
        pytest.param(
            {"ports": [{"container_port": 80}, {"container_port": 80}]},
            "listed twice",
            id="port-twice",
        ),
        pytest.param({"files_path": "/etc"}, "/etc", id="files-over-etc"),
        pytest.param({"files_path": "/proc/sys"}, "/proc", id="files-under-proc"),
        pytest.param({"files_path": "/"}, "files_path", id="files-over-root"),
        pytest.param({"files_path": "/srv/../usr"}, "normalised", id="files-dot-dot"),
        pytest.param({"files_path": "/srv/www/"}, "must not end with /", id="files-trailing"),
    ],
)
def test_specs_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_spec(**overrides)
