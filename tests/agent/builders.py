"""Builders for agent tests: specs, a fake GPU inventory, a test token."""

from __future__ import annotations

import secrets
from typing import Any

from gpuyard.agent.models import ContainerSpec, GpuInfo


def make_token() -> str:
    return secrets.token_urlsafe(24)


def fake_gpus(count: int = 4, model: str = "NVIDIA H100 80GB HBM3") -> list[GpuInfo]:
    """``count`` GPUs with distinct, recognisable UUIDs (GPU-00000000-...-00000000000<i>)."""
    return [
        GpuInfo(
            index=i,
            uuid=f"GPU-{i:08d}-1111-2222-3333-{i:012d}",
            name=model,
            memory_total_mib=81559,
        )
        for i in range(count)
    ]


def make_spec(**overrides: Any) -> ContainerSpec:
    """A small valid spec; override any field."""
    fields: dict[str, Any] = {
        "workload_id": secrets.token_hex(16),
        "replica": 0,
        "image": "gpuyard-test/busybox:latest",
        "command": ["sleep", "300"],
        "cpu_milli": 500,
        "ram_mib": 64,
        "storage_mib": 16,
    }
    fields.update(overrides)
    return ContainerSpec.model_validate(fields)
