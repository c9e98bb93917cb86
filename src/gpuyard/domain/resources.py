"""Resources: what a workload asks for and what a server has.

API units are cores, GB and GPUs (floats); internally everything is an integer so that
arithmetic is exact and the database can guard it with CHECK constraints:
millicores, MiB, MiB, and GPU milli-units (1000 = one whole GPU).

``gpu_memory_mib`` is the one per-device dimension: GPU memory (VRAM) a share of one GPU
reserves on the device it gets (HAMi's and KAI's gpu-memory). Servers keep no total of it;
each device counts its own (``server_gpus.allocated_memory_mib``), so it takes no part in
:meth:`Resources.fits_in` against a server's capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from gpuyard.domain.errors import FieldError, InvalidInput
from gpuyard.domain.limits import MAX_GPU_MEMORY_GB

MIB_PER_GB = 1024
GPU_MILLI = 1000

# Sane maxima: large enough for any real server, small enough to catch typos (ram_gb=1e9).
MAX_CPU_CORES = 4096
MAX_RAM_GB = 65536
MAX_STORAGE_GB = 1048576
MAX_GPUS = 64


@dataclass(frozen=True, slots=True)
class GpuShareRule:
    """Which shares of one GPU a request may ask for, in GPU milli-units.

    A share is at least ``min_milli``, a multiple of ``step_milli`` and less than one
    whole GPU. The default (0.05 steps, 0.05-0.95) is the operator's to change
    (``GPUYARD_GPU_SHARE_MIN`` / ``GPUYARD_GPU_SHARE_STEP``): a step of 0.001 allows any
    milli value above the minimum. Every allowed share is an integer milli value, so shares
    still add up exactly on a device (at most 1000 milli).
    """

    min_milli: int = 50
    step_milli: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.step_milli < GPU_MILLI or not 1 <= self.min_milli < GPU_MILLI:
            raise ValueError("a GPU share's minimum and step must be 1-999 milli")
        if self.smallest > self.max_milli:
            raise ValueError("no share below one GPU is both above the minimum and on a step")

    @property
    def smallest(self) -> int:
        """The smallest share allowed: the minimum rounded up to the step."""
        return self.min_milli + (-self.min_milli) % self.step_milli

    @property
    def max_milli(self) -> int:
        """The largest share below one whole GPU that the step allows."""
        top = GPU_MILLI - 1
        return top - top % self.step_milli

    def allows(self, milli: int) -> bool:
        """True when ``milli`` (0 < milli < 1000) is a share a request may ask for."""
        return self.min_milli <= milli < GPU_MILLI and milli % self.step_milli == 0

    def largest_within(self, room_milli: int) -> int:
        """The largest allowed share that fits in ``room_milli`` of one device (0: none)."""
        fitting = min(room_milli, self.max_milli)
        fitting -= fitting % self.step_milli
        return fitting if fitting >= self.min_milli else 0

    def describe(self) -> str:
        """The rule in API units, for error messages: ``a share 0.05-0.95 in steps of 0.05``."""
        return (
            f"a share {_num(self.smallest / GPU_MILLI)}-{_num(self.max_milli / GPU_MILLI)}"
            f" in steps of {_num(self.step_milli / GPU_MILLI)}"
        )


#: The rule when nothing else is configured: 0.05, 0.10, ... 0.95.
DEFAULT_GPU_SHARES = GpuShareRule()


@dataclass(frozen=True, slots=True, order=True)
class Resources:
    """An amount of every schedulable dimension, in integer internal units."""

    cpu_milli: int = 0
    ram_mib: int = 0
    storage_mib: int = 0
    gpu_milli: int = 0
    #: GPU memory reserved on the (one) device of a share; 0: none asked for.
    gpu_memory_mib: int = 0

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_api(
        cls,
        cpu: float = 0,
        ram_gb: float = 0,
        storage_gb: float = 0,
        gpu: float = 0,
        *,
        field_prefix: str = "",
        shares: GpuShareRule = DEFAULT_GPU_SHARES,
        gpu_memory_gb: float | None = None,
    ) -> Resources:
        """Validate API units and convert them; raise InvalidInput naming every bad field.

        ``gpu_memory_gb`` (None or 0: none) is only meaningful with a share of one GPU: a
        whole GPU holds all of its memory already."""
        errors: list[FieldError] = []
        cpu_milli = _scaled(cpu, 1000, "cpu", MAX_CPU_CORES, errors, field_prefix, step=100)
        ram_mib = _scaled(ram_gb, MIB_PER_GB, "ram_gb", MAX_RAM_GB, errors, field_prefix)
        storage_mib = _scaled(
            storage_gb, MIB_PER_GB, "storage_gb", MAX_STORAGE_GB, errors, field_prefix
        )
        gpu_milli = _gpu_milli(gpu, errors, field_prefix, shares)
        memory_mib = 0
        if gpu_memory_gb is not None:
            memory_mib = _scaled(
                gpu_memory_gb, MIB_PER_GB, "gpu_memory_gb", MAX_GPU_MEMORY_GB, errors, field_prefix
            )
            if memory_mib and not 0 < gpu_milli < GPU_MILLI and not errors:
                errors.append(
                    FieldError(
                        field_prefix + "gpu_memory_gb",
                        "only with a share of one GPU (0 < gpu < 1): a whole GPU holds all "
                        "of its memory",
                    )
                )
        if errors:
            raise InvalidInput.for_fields(errors)
        return cls(cpu_milli, ram_mib, storage_mib, gpu_milli, memory_mib)

    # -- API units ----------------------------------------------------------------------
    @property
    def cpu(self) -> float:
        return self.cpu_milli / 1000

    @property
    def ram_gb(self) -> float:
        return round(self.ram_mib / MIB_PER_GB, 3)

    @property
    def storage_gb(self) -> float:
        return round(self.storage_mib / MIB_PER_GB, 3)

    @property
    def gpu(self) -> float:
        return self.gpu_milli / GPU_MILLI

    @property
    def gpu_memory_gb(self) -> float:
        return round(self.gpu_memory_mib / MIB_PER_GB, 3)

    @property
    def whole_gpus(self) -> int:
        """Number of whole devices a request needs (0 for a share of one GPU)."""
        return self.gpu_milli // GPU_MILLI if self.gpu_milli % GPU_MILLI == 0 else 0

    @property
    def is_gpu_share(self) -> bool:
        return 0 < self.gpu_milli < GPU_MILLI

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.ram_mib + other.ram_mib,
            self.storage_mib + other.storage_mib,
            self.gpu_milli + other.gpu_milli,
            self.gpu_memory_mib + other.gpu_memory_mib,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli - other.cpu_milli,
            self.ram_mib - other.ram_mib,
            self.storage_mib - other.storage_mib,
            self.gpu_milli - other.gpu_milli,
            self.gpu_memory_mib - other.gpu_memory_mib,
        )

    def scaled(self, factor: int) -> Resources:
        return Resources(
            self.cpu_milli * factor,
            self.ram_mib * factor,
            self.storage_mib * factor,
            self.gpu_milli * factor,
            self.gpu_memory_mib * factor,
        )

    def fits_in(self, available: Resources) -> bool:
        """True when every server-wide dimension is at most that of ``available`` (GPU
        memory is per device: the scheduler checks it against each device's free memory)."""
        return (
            self.cpu_milli <= available.cpu_milli
            and self.ram_mib <= available.ram_mib
            and self.storage_mib <= available.storage_mib
            and self.gpu_milli <= available.gpu_milli
        )

    def is_non_negative(self) -> bool:
        return (
            min(self.cpu_milli, self.ram_mib, self.storage_mib, self.gpu_milli, self.gpu_memory_mib)
            >= 0
        )

    def is_zero(self) -> bool:
        return not (self.cpu_milli or self.ram_mib or self.storage_mib or self.gpu_milli)

    def shortfalls(self, available: Resources) -> list[tuple[str, float, float]]:
        """Dimensions where this request exceeds ``available``: (name, requested, free)."""
        out: list[tuple[str, float, float]] = []
        for name, want, have in (
            ("cpu", self.cpu, available.cpu),
            ("ram_gb", self.ram_gb, available.ram_gb),
            ("storage_gb", self.storage_gb, available.storage_gb),
            ("gpu", self.gpu, available.gpu),
        ):
            if want > have:
                out.append((name, want, have))
        return out

    def describe(self) -> str:
        """Short human form, e.g. ``2 cpu, 8 GB RAM, 1 GPU``."""
        parts = [f"{_num(self.cpu)} cpu", f"{_num(self.ram_gb)} GB RAM"]
        if self.storage_mib:
            parts.append(f"{_num(self.storage_gb)} GB storage")
        if self.gpu_milli:
            parts.append(f"{_num(self.gpu)} GPU" + ("s" if self.gpu > 1 else ""))
        if self.gpu_memory_mib:
            parts.append(f"{_num(self.gpu_memory_gb)} GB GPU memory")
        return ", ".join(parts)


_NOISE = Decimal("0.000001")


def _num(value: float) -> str:
    return f"{value:g}"


def _decimal(value: object, field: str, errors: list[FieldError]) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        errors.append(FieldError(field, "must be a number"))
        return None
    try:
        dec = Decimal(str(value))
    except InvalidOperation:
        errors.append(FieldError(field, "must be a number"))
        return None
    if not dec.is_finite():
        errors.append(FieldError(field, "must be a finite number"))
        return None
    # Forgive binary float noise (0.1 * 3 == 0.30000000000000004) but nothing coarser.
    return dec.quantize(_NOISE) if abs(dec) < 10**12 else dec


def _scaled(
    value: object,
    factor: int,
    name: str,
    maximum: int,
    errors: list[FieldError],
    prefix: str,
    step: int = 1,
) -> int:
    field = prefix + name
    dec = _decimal(value, field, errors)
    if dec is None:
        return 0
    if dec < 0:
        errors.append(FieldError(field, "must not be negative"))
        return 0
    if dec > maximum:
        errors.append(FieldError(field, f"must be at most {maximum}"))
        return 0
    scaled = int((dec * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if step > 1 and (dec * factor) % step != 0:
        errors.append(FieldError(field, f"must be a multiple of {step / factor:g}"))
        return 0
    return scaled


def _gpu_milli(value: object, errors: list[FieldError], prefix: str, shares: GpuShareRule) -> int:
    field = prefix + "gpu"
    dec = _decimal(value, field, errors)
    if dec is None:
        return 0
    if dec < 0:
        errors.append(FieldError(field, "must not be negative"))
        return 0
    if dec == 0:
        return 0
    if dec < 1:
        # A share of one GPU: whole milli values the rule allows, so shares add up exactly
        # on a device and the database's 0..1000 milli CHECK guards them.
        milli = dec * GPU_MILLI
        if milli % 1 != 0 or not shares.allows(int(milli)):
            errors.append(FieldError(field, f"a GPU share must be {shares.describe()}"))
            return 0
        return int(milli)
    if dec % 1 != 0:
        errors.append(FieldError(field, f"must be a whole number of GPUs or {shares.describe()}"))
        return 0
    if dec > MAX_GPUS:
        errors.append(FieldError(field, f"must be at most {MAX_GPUS}"))
        return 0
    return int(dec) * GPU_MILLI
