"""Whether a request could ever run within its limits, and whether a resize would take a
team over them now (issue 21, "refuse what can never run" for quotas).

A workload counts against a chain of limit holders (:class:`LimitHolder`): its team's
quota and per-GPU-model limits, the department above the team (its limits cover its own
work and its teams' together), or, for work in no team, the default quota of users in no
team. The scheduler's admission checks (plugins ``quota`` and ``model_limits``) hold
work past a limit back with the ``quota`` reason. That wait ends when the team's other
work ends, unless the workload alone asks for more than a limit allows: then it would
wait for ever. :func:`over_limits_alone` finds those, so submit and resize refuse them
(422) instead.

- The whole request counts: per-replica resources times the replicas (a workload's
  replicas are meant to run together; a gang's must), compared with each limit.
- Per-GPU-model limits (the team's and the department's; a limit on ``H100`` counts
  ``H100 80GB`` devices too, as the scheduler's does) refuse work when they leave no room
  for it over every model it accepts (``gpu_model``), or over every GPU model of the
  fleet it could use (work naming no model too: it may land on any of them). The test is
  sound, so nothing the scheduler could run is refused (:func:`_no_room`).

:func:`over_limits_with_held` is the second question, for a resize in place: would the
new size, with what the rest of the holder's work holds now, go past a limit?
Both only judge the dimensions a change grows (``grown``): shrinking is always allowed,
and a limit lowered after submission never refuses what does not grow.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.plugins.model_limits import covers

#: (field of the request, Resources attribute, what the limit is called, unit, unit name)
_DIMS = (
    ("cpu", "cpu_milli", "cpu", 1000, "cores"),
    ("ram_gb", "ram_mib", "memory", MIB_PER_GB, "GB"),
    ("gpu", "gpu_milli", "GPU", GPU_MILLI, "GPUs"),
)
#: Every field a limit may refuse (the request's names).
LIMITED_FIELDS = frozenset({"cpu", "ram_gb", "gpu", "gpu_model"})


@dataclass(frozen=True, slots=True)
class LimitHolder:
    """One set of limits a workload counts against, in stored units (None: unlimited)."""

    #: "team", "department" (the team's parent) or "default" (users in no team).
    kind: str
    #: The team's name; empty for the default quota.
    name: str = ""
    cpu_milli: int | None = None
    ram_mib: int | None = None
    gpu_milli: int | None = None
    #: (model as written, milli-GPUs): at most this much of each model held at once.
    gpu_models: tuple[tuple[str, int], ...] = ()

    def limit_name(self, what: str) -> str:
        """ "team ml's GPU limit", "the default GPU quota of users in no team"."""
        if self.kind == "default":
            return f"the default {what} quota of users in no team"
        return f"{self.kind} {self.name}'s {what} limit"

    def subject(self) -> str:
        """Whose holdings count against it, as a sentence's subject."""
        if self.kind == "default":
            return "the owner's work in no team"
        if self.kind == "department":
            return f"department {self.name} (with its teams)"
        return f"team {self.name}"


@dataclass(frozen=True, slots=True)
class Held:
    """What the work counting against one holder holds now, the judged workload excluded."""

    resources: Resources = field(default_factory=Resources)
    #: Milli-GPUs held on devices of each model (the device's model string).
    by_device_model: Mapping[str, int] = field(default_factory=dict)

    def of_model(self, key: ModelKey) -> int:
        """Milli-GPUs held on devices that a limit of model ``key`` counts."""
        return sum(
            milli for model, milli in self.by_device_model.items() if device_matches(key, model)
        )


@dataclass(frozen=True, slots=True)
class OverLimit:
    """A limit a request goes past: the request's field to name, and why."""

    field: str
    message: str


def over_limits_alone(
    per_replica: Resources,
    replicas: int,
    gpu_model: str | None,
    holders: Sequence[LimitHolder],
    grown: Collection[str] = LIMITED_FIELDS,
    fleet_models: Collection[str] = (),
) -> list[OverLimit]:
    """The limits that ``replicas`` of ``per_replica`` (pinned to ``gpu_model``) go past
    on their own, so the work could never run within them: one finding per field of
    ``grown`` (the first holder of ``holders`` that refuses it), none when it could.
    ``fleet_models`` are the GPU models of the servers it may use (its cluster's, or the
    fleet's): when every one it could use is limited below its GPUs, it is refused too."""
    found: list[OverLimit] = []
    for name, attr, what, unit, unit_name in _DIMS:
        need: int = getattr(per_replica, attr)
        if name not in grown or need <= 0:
            continue
        total = need * replicas
        for holder in holders:
            limit: int | None = getattr(holder, attr)
            if limit is not None and total > limit:
                asks = _asks(need, replicas, unit, unit_name)
                found.append(
                    OverLimit(
                        name,
                        f"{holder.limit_name(what)} is {_amount(limit, unit, unit_name)}; "
                        f"this asks {asks}, so it could never run within it",
                    )
                )
                break
    if "gpu_model" in grown:
        model = _model_over_limits(
            per_replica.gpu_milli, replicas, gpu_model, holders, fleet_models
        )
        if model is not None and not any(f.field == model.field for f in found):
            found.append(model)
    return found


def _model_over_limits(
    need: int,
    replicas: int,
    gpu_model: str | None,
    holders: Sequence[LimitHolder],
    fleet_models: Collection[str],
) -> OverLimit | None:
    """The finding (on ``gpu_model``, or on ``gpu`` for work naming no model) when the
    per-model limits leave no room for the request: judged over the models it accepts,
    then over the GPU models of the fleet (``fleet_models``) it could use."""
    if need <= 0:
        return None
    requested = model_key(gpu_model)
    choices: list[tuple[str, list[Callable[[ModelKey], bool]], bool]] = []
    if requested is not None:
        alternatives = [_covers_alternative(a) for a in requested]
        choices.append(("every model it accepts", alternatives, False))
    usable = sorted({m for m in fleet_models if device_matches(requested, m)})
    if usable:
        what = "every GPU model it could use in the fleet"
        choices.append((what, [_counts_device(m) for m in usable], True))
    for what, counted, fleet in choices:
        message = _no_room(need, replicas, counted, holders, what, fleet)
        if message is not None:
            return OverLimit("gpu" if requested is None else "gpu_model", message)
    return None


def _no_room(
    need: int,
    replicas: int,
    choices: Sequence[Callable[[ModelKey], bool]],
    holders: Sequence[LimitHolder],
    what: str,
    fleet: bool,
) -> str | None:
    """Why ``replicas`` of ``need`` milli-GPUs never fit the per-model limits of
    ``holders`` when each GPU is of one of ``choices`` (a test of whether a limit's model
    counts it), or None when they may.

    Two sound tests, so that nothing the scheduler could run is refused: one limit counts
    every choice and is below the total; or, giving each choice the room of its tightest
    limit as if no limit were shared between choices, fewer whole replicas fit than asked
    (a replica's GPUs are on one server, whose devices are of one model)."""
    total = need * replicas
    limits = [
        (limit, holder.limit_name(model), model_key(model))
        for holder in holders
        for model, limit in holder.gpu_models
    ]
    whole = [
        (limit, name)
        for limit, name, key in limits
        if total > limit and all(c(key) for c in choices)
    ]
    asks = _asks(need, replicas, GPU_MILLI, "GPUs")
    if whole:
        limit, name = min(whole)
        amount = _amount(limit, GPU_MILLI, "GPUs")
        said = f"{name} is {amount}" if not fleet else f"{what} counts against {name} of {amount}"
        return f"{said}; this asks {asks}, so it could never run within it"
    tightest: list[tuple[int, str]] = []
    room = 0
    for counted in choices:
        caps = [(limit, name) for limit, name, key in limits if counted(key)]
        if not caps:
            return None  # this model has no limit
        cap = min(caps)
        tightest.append(cap)
        room += max(0, cap[0]) // need
    if room >= replicas:
        return None
    listed = ", ".join(
        f"{name} is {_amount(limit, GPU_MILLI, 'GPUs')}" for limit, name in dict.fromkeys(tightest)
    )
    if replicas == 1:
        return (
            f"{what} is limited below what it asks: {listed}; this asks {asks}, "
            "so it could never run within them"
        )
    return (
        f"{what} is limited: {listed}; this asks {asks} and they leave room for "
        f"{room} of its replicas, so it could never run within them"
    )


def _covers_alternative(alternative: frozenset[str]) -> Callable[[ModelKey], bool]:
    """Whether a limit's model covers every device of one alternative of a request."""

    def test(limited: ModelKey) -> bool:
        return covers(limited, (alternative,))

    return test


def _counts_device(device_model: str) -> Callable[[ModelKey], bool]:
    """Whether a limit's model counts devices of ``device_model``."""

    def test(limited: ModelKey) -> bool:
        return device_matches(limited, device_model)

    return test


def over_limits_with_held(
    per_replica: Resources,
    replicas: int,
    gpu_model: str | None,
    device_models: Collection[str],
    limits: Sequence[tuple[LimitHolder, Held]],
    grown: Collection[str] = LIMITED_FIELDS,
) -> list[OverLimit]:
    """The limits that ``replicas`` of ``per_replica`` would go past together with what
    each holder's other work holds now (``limits``: each holder with its :class:`Held`),
    judging the fields of ``grown`` only. GPUs count against a per-model limit when the
    workload's devices (``device_models``) are of that model, or when every model it
    accepts is."""
    found: list[OverLimit] = []
    requested = model_key(gpu_model)
    for name, attr, what, unit, unit_name in _DIMS:
        need: int = getattr(per_replica, attr) * replicas
        if name not in grown or need <= 0:
            continue
        for holder, held in limits:
            limit: int | None = getattr(holder, attr)
            others: int = getattr(held.resources, attr)
            if limit is not None and others + need > limit:
                found.append(_would_hold(name, holder, what, limit, others, need, unit, unit_name))
                break
        if name != "gpu" or any(f.field == "gpu" for f in found):
            continue
        for holder, held in limits:
            over = _model_would_hold(holder, held, need, device_models, requested)
            if over is not None:
                found.append(over)
                break
    return found


def _model_would_hold(
    holder: LimitHolder,
    held: Held,
    need: int,
    device_models: Collection[str],
    requested: ModelKey,
) -> OverLimit | None:
    """The first per-model limit of ``holder`` that ``need`` more milli-GPUs would go
    past with ``held``, when they count against it (see :func:`over_limits_with_held`)."""
    for model, limit in holder.gpu_models:
        key = model_key(model)
        if key is None:
            continue
        counts = covers(key, requested) or any(device_matches(key, m) for m in device_models)
        others = held.of_model(key) if counts else 0
        if counts and others + need > limit:
            return _would_hold("gpu", holder, model, limit, others, need, GPU_MILLI, "GPUs")
    return None


def _would_hold(
    name: str,
    holder: LimitHolder,
    what: str,
    limit: int,
    others: int,
    need: int,
    unit: int,
    unit_name: str,
) -> OverLimit:
    return OverLimit(
        name,
        f"{holder.subject()} would hold {_amount(others + need, unit, unit_name)}, over "
        f"{holder.limit_name(what)} of {_fmt(limit, unit)} (its other work holds "
        f"{_fmt(others, unit)}; this would hold {_fmt(need, unit)})",
    )


def _asks(need: int, replicas: int, unit: int, unit_name: str) -> str:
    """ "8 GPUs" or "8 GPUs (2 replicas x 4)"."""
    total = _amount(need * replicas, unit, unit_name)
    return total if replicas == 1 else f"{total} ({replicas} replicas x {_fmt(need, unit)})"


def _amount(value: int, unit: int, unit_name: str) -> str:
    """ "1 GPU", "8 GPUs", "0.5 cores", "16 GB"."""
    if value == unit and unit_name.endswith("s"):
        unit_name = unit_name[:-1]
    return f"{_fmt(value, unit)} {unit_name}"


def _fmt(value: int, unit: int) -> str:
    return f"{round(value / unit, 3):g}"
