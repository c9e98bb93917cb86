"""Whether a request could ever run: does any server of its scope, emptied, hold one replica?

Issue 21 ("refuse what can never run"): a request for a GPU model no server has, more GPUs
than any server holds, more cpu, memory or storage than any server has, or labels no
server carries would otherwise wait forever. Submit and resize ask :func:`never_fits`
against every server of the request's cluster (or of the fleet when it names none),
online or not: an offline server may come back, so only what no server could ever hold is
refused. A scope with no servers at all is not judged (a new cluster's servers may not be
listed yet, a Kubernetes cluster's nodes arrive with its first sync). Servers of a
``capacity_shared`` cluster (Kubernetes: a node's recorded capacity is what foreign pods
leave, so it grows when they end) are judged by their labels only.

The filters are applied in a fixed order (labels, GPU model, GPU count, cpu, ram,
storage) and the first that leaves no server names the field of the refusal; its message
says what the servers that passed the earlier filters do have, so the caller can ask for
something that exists.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpuyard.domain.resources import MIB_PER_GB
from gpuyard.scheduler.framework import OK
from gpuyard.scheduler.gpu_match import describe_model, device_matches
from gpuyard.scheduler.plugins.labels import LabelsFilter
from gpuyard.scheduler.request import build_request
from gpuyard.scheduler.snapshot import PendingWorkload, ServerView

#: At most this many GPU models are listed in a refusal (the rest are counted).
_MAX_MODELS_LISTED = 12


@dataclass(frozen=True, slots=True)
class NeverFits:
    """Why no server of the scope could ever hold one replica: the field to name and what
    exists instead."""

    field: str
    message: str


def never_fits(
    workload: PendingWorkload,
    servers: Iterable[ServerView],
    capacity_shared: Collection[str] = (),
) -> NeverFits | None:
    """None when some server of ``workload``'s scope (its cluster, or every server when
    it names none), emptied, could hold one replica, or when the scope has no servers;
    otherwise the first filter that ruled every server out. Servers of the clusters in
    ``capacity_shared`` pass every filter but the labels: what they lack now, work
    gpuyard did not place may give back."""
    where = "of its cluster" if workload.cluster_id is not None else "in the fleet"
    req = build_request(workload, 0)
    model_asked = f"{describe_model(workload.gpu_model)!r} " if workload.gpu_model else ""
    labels = LabelsFilter()  # the scheduler's own rule (the server-name key included)
    res = req.per_replica
    devices = req.whole_gpus or (1 if req.share_milli else 0)

    def matching(server: ServerView) -> int:
        return sum(1 for g in server.gpus if device_matches(req.model, g.model))

    stages: list[tuple[str, Callable[[ServerView], bool], Callable[[Sequence[ServerView]], str]]]
    stages = [
        (
            "node_selector",
            lambda s: labels.filter_static(req, s) is OK,
            lambda left: (
                f"no server {where} carries all of these labels; "
                f"{_label_values(left, workload.node_selector)}"
            ),
        ),
        (
            "gpu_model",
            lambda s: devices == 0 or matching(s) > 0,
            lambda left: f"no server {where} has a {model_asked}GPU; {_models(left)}",
        ),
        (
            "gpu",
            lambda s: (
                devices == 0
                or (matching(s) >= devices and not (req.share_milli and s.whole_gpus_only))
            ),
            lambda left: (
                f"no server {where} has {devices} such GPUs; "
                f"at most {max(matching(s) for s in left)} per server"
            ),
        ),
        (
            "cpu",
            lambda s: res.cpu_milli <= s.capacity.cpu_milli,
            lambda left: (
                f"no server {where} has {res.cpu:g} cpu; at most "
                f"{max(s.capacity.cpu_milli for s in left) / 1000:g} per server"
            ),
        ),
        (
            "ram_gb",
            lambda s: res.ram_mib <= s.capacity.ram_mib,
            lambda left: (
                f"no server {where} has {res.ram_gb:g} GB of memory; at most "
                f"{_gb(max(s.capacity.ram_mib for s in left))} GB per server"
            ),
        ),
        (
            "storage_gb",
            lambda s: res.storage_mib <= s.capacity.storage_mib,
            lambda left: (
                f"no server {where} has {res.storage_gb:g} GB of storage; at most "
                f"{_gb(max(s.capacity.storage_mib for s in left))} GB per server"
            ),
        ),
    ]

    def kept_by(stage: str, keeps: Callable[[ServerView], bool], server: ServerView) -> bool:
        return keeps(server) or (stage != "node_selector" and server.cluster_id in capacity_shared)

    # Submit asks this for every request: stop at the first server that could hold it (the
    # usual answer), and walk the stages over the whole scope only to say why none can.
    scope: list[ServerView] = []
    for server in servers:
        if workload.cluster_id is not None and server.cluster_id != workload.cluster_id:
            continue
        if all(kept_by(stage, keeps, server) for stage, keeps, _ in stages):
            return None
        scope.append(server)
    if not scope:
        return None
    left = scope
    for field_name, keeps, describe in stages:
        kept = [s for s in left if kept_by(field_name, keeps, s)]
        if not kept:
            return NeverFits(
                field_name, f"can never run, even on an empty server: {describe(left)}"
            )
        left = kept
    return None


def _models(servers: Sequence[ServerView]) -> str:
    """The GPU models of ``servers`` with the most devices one server has of each."""
    most: dict[str, int] = {}
    for server in servers:
        counts: dict[str, int] = {}
        for gpu in server.gpus:
            counts[gpu.model] = counts.get(gpu.model, 0) + 1
        for model, count in counts.items():
            most[model] = max(most.get(model, 0), count)
    if not most:
        return "none has any GPU"
    listed = sorted(most.items())[:_MAX_MODELS_LISTED]
    text = ", ".join(f"{model} (up to {count} per server)" for model, count in listed)
    more = len(most) - len(listed)
    return f"models there: {text}" + (f" and {more} more" if more > 0 else "")


def _label_values(servers: Sequence[ServerView], selector: Mapping[str, str]) -> str:
    """The values the servers carry for the selector's keys (a few of each)."""
    parts = []
    for key in sorted(selector)[:_MAX_MODELS_LISTED]:
        values = sorted({s.labels[key] for s in servers if key in s.labels})
        shown = ", ".join(repr(v) for v in values[:_MAX_MODELS_LISTED]) or "none"
        parts.append(f"{key!r}: {shown}")
    return "values there: " + "; ".join(parts)


def _gb(mib: int) -> str:
    return f"{round(mib / MIB_PER_GB, 1):g}"
