"""Shared schema pieces."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from gpuyard.domain.limits import (
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    MAX_GPU_MEMORY_GB,
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
)
from gpuyard.domain.resources import MAX_CPU_CORES, MAX_GPUS, MAX_RAM_GB, MAX_STORAGE_GB
from gpuyard.domain.text import unstorable_paths

#: The error type of text the database or a JSON encoder cannot hold; its ``ctx`` carries
#: ``paths``: (path below the field, reason) pairs, so the answer names each bad entry.
UNSTORABLE_TEXT = "unstorable_text"


class RequestModel(BaseModel):
    """Request bodies: unknown fields and wrong types are errors, never coerced; numbers
    are finite; no text anywhere (values, dict keys, list items, nested) holds a character
    that cannot be stored (domain/text.py), so a refused body writes nothing and an
    accepted one renders everywhere."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str | dict | list):
            bad = list(unstorable_paths(value))
            if bad:
                raise PydanticCustomError(
                    UNSTORABLE_TEXT, "{reason}", {"reason": bad[0][1], "paths": bad}
                )
        return value


# Resource amounts: the upper bounds are declared here so the OpenAPI document states them;
# the finer rules (steps, negative values, GPU shares) are domain/resources.py's, whose
# messages name every bad field at once.
Cpu = Annotated[float, Field(le=MAX_CPU_CORES, description="cores, in 0.1 steps")]
RamGb = Annotated[float, Field(le=MAX_RAM_GB, description="GB")]
StorageGb = Annotated[float, Field(le=MAX_STORAGE_GB, description="GB")]
Gpu = Annotated[
    float,
    Field(
        le=MAX_GPUS,
        description="whole GPUs (1, 2, ...) or a share of one GPU (by default 0.05-0.95 in "
        "steps of 0.05; GET /fleet/overview says the configured rule)",
    ),
]
GpuMemoryGb = Annotated[
    float,
    Field(
        le=MAX_GPU_MEMORY_GB,
        description="GPU memory (GB) a share of one GPU reserves on its device; only with "
        "0 < gpu < 1. Enforcement inside the container is cooperative (docs/architecture.md)",
    ),
]
GpuModel = Annotated[str, Field(min_length=1, max_length=128, examples=["H100"])]
#: A workload's GPU model request: one model or several acceptable ones, '|'-separated.
GpuModelRequest = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        examples=["H100", "V100M16|V100M32"],
        description="one GPU model, or up to 8 acceptable ones separated by '|' "
        "(whole words, case-insensitive)",
    ),
]
#: An object's id as the API returns it (32 hex characters today; room for other forms).
ObjectId = Annotated[str, Field(min_length=1, max_length=64)]
LabelKey = Annotated[
    str, Field(min_length=1, max_length=MAX_LABEL_KEY_LENGTH, pattern=LABEL_KEY_PATTERN)
]
LabelValue = Annotated[str, Field(max_length=MAX_LABEL_VALUE_LENGTH, pattern=LABEL_VALUE_PATTERN)]
#: Server labels, and the node selectors matched against them (Kubernetes' label syntax).
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=MAX_LABELS)]


class ResourcesPublic(BaseModel):
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
