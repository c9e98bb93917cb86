"""Extension points of the scheduler, after kube-scheduler's framework.

A plugin is a small class with a ``name`` and one method per phase it takes part in; each
phase is a :class:`~typing.Protocol` below. :mod:`gpuyard.scheduler.registry` maps names to
factories and builds a :class:`Profile` from a list of names, so ``pack``, ``binpack`` and
``spread`` are configurations of the same engine rather than branches inside it.

Phases, in the order a workload meets them:

1. ``AdmissionCheck`` — per workload, before any server (team quota).
2. ``StaticFilter`` — per server, reading only what cannot change within a cycle (status,
   cluster, labels, GPU model); evaluated once per group of equal requests.
3. ``Filter`` — per server against the cycle's working state (free resources, holds).
4. ``Scorer`` — rank the feasible servers; a profile compares scores in order. A scorer
   that is also a ``PreScore`` is first asked, once per cycle, for the scorer to use in
   that cycle, given the cycle's starting state and its whole queue (kube's PreScore,
   lifted to the cycle: ``fgd`` learns its workload mix there). A profile's first scorer
   may also be a ``CycleTerm``: a part of its score that reads the cycle beyond one server
   and so is added fresh at each comparison instead of being cached with the server.
5. ``CandidateOrder`` — which feasible servers are looked at first (best-first for the
   profile, so a capped search still finds the best by the first score).
6. ``VictimSelector`` — the minimal set of replicas to evict on one server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation, RunningReplica, ServerView
from gpuyard.scheduler.state import CycleState, NodeState


class Code(StrEnum):
    """What a filter's "no" means for one server."""

    SUCCESS = "success"
    #: No room now; evicting lower-priority work on this server could make room.
    UNSCHEDULABLE = "unschedulable"
    #: The server takes no new work now (draining, offline, held); preemption won't help.
    UNAVAILABLE = "unavailable"
    #: It never fits this server as built: cluster, labels, GPU model, total capacity.
    UNRESOLVABLE = "unresolvable"


# Resource names used in InsufficientResource (units: milli-cores, MiB, MiB, devices, milli).
CPU = "cpu"
RAM = "ram"
STORAGE = "storage"
GPU_DEVICES = "gpu"  # whole devices of the requested model
GPU_SHARE = "gpu_share"  # milli on a single device
GPU_MEMORY = "gpu_memory"  # MiB of GPU memory on a single device (a share's request)
GPU_MILLI_TOTAL = "gpu_milli"  # aggregate GPU milli (only when device data disagrees)


@dataclass(frozen=True, slots=True)
class InsufficientResource:
    """One dimension that does not fit (kube's ``InsufficientResource``).

    ``available`` is what the server has free (for UNSCHEDULABLE) or in total (for
    UNRESOLVABLE); ``capacity`` is the server's total in the same unit.
    """

    resource: str
    requested: int
    available: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Status:
    """A plugin's verdict on one server.

    ``phrase`` names the failure category for the pending reason, written with ``{has}`` /
    ``{is}`` placeholders so it reads right for one or many servers ("{is} draining").
    Failures from the fit filter carry ``insufficient`` numbers instead of one phrase.
    """

    code: Code
    plugin: str = ""
    phrase: str = ""
    insufficient: tuple[InsufficientResource, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS


OK = Status(Code.SUCCESS)


@dataclass(frozen=True, slots=True)
class AdmitResult:
    """How many replicas an admission check lets through, and why not more."""

    allowed: int
    code: PendingCode | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class VictimSet:
    """Replicas to evict on one server so that a batch of replicas fits there."""

    server_id: str
    victims: tuple[RunningReplica, ...]
    #: Device slots of each replica of the batch once the victims are gone.
    allocations: tuple[GpuAllocation, ...]
    max_priority: int
    gpu_milli: int
    #: Start time of the longest-running victim (``now`` for one not started yet).
    oldest_start: float


@runtime_checkable
class AdmissionCheck(Protocol):
    name: str

    def admit(self, req: Request, cycle: CycleState, replicas: int) -> AdmitResult:
        """How many of ``replicas`` more may be placed for this workload."""
        ...


@runtime_checkable
class StaticFilter(Protocol):
    name: str

    def filter_static(self, req: Request, server: ServerView) -> Status:
        """Verdict from immutable server data only (cached per request group)."""
        ...


@runtime_checkable
class Filter(Protocol):
    """Two speeds: ``filter`` runs for every server the search looks at and must be cheap
    (a failing verdict may be a shared one without numbers); ``explain`` gives the full
    verdict with its numbers and runs only when a pending reason is written."""

    name: str

    def filter(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        """OK, or a failing verdict, for one replica of ``req`` on ``node`` now."""
        ...

    def explain(self, req: Request, node: NodeState, cycle: CycleState) -> Status:
        """The full verdict (code and numbers) for the same question."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Must read only the request's shape (per-replica resources, model, group) and the
    server's state: the placer keeps a shape's scores on a server until the server
    changes (``NodeState.version``)."""

    name: str

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        """Higher is better; ``alloc`` is the slot choice the replica would get there."""
        ...


@runtime_checkable
class PreScore(Protocol):
    """A scorer that looks at the whole cycle before it scores (optional phase)."""

    name: str

    def prepare(self, cycle: CycleState, queue: Sequence[Request]) -> Scorer:
        """The scorer for this cycle, from its state before any decision and its queue.

        Called once per cycle by the engine, before the first placement. Must be pure and
        leave the plugin itself usable by other cycles: return a new scorer (or ``self``)
        rather than keep per-cycle state on a plugin that the registry shares.
        """
        ...


#: A score term read fresh at every comparison: (request, server, slots) -> score.
Term = Callable[[Request, NodeState, GpuAllocation], float]


@runtime_checkable
class CycleTerm(Protocol):
    """A scorer whose score also has a part that reads the cycle's state beyond the server
    (``fgd``'s model reserve reads the free GPU per model over the whole fleet).

    The placer caches :meth:`Scorer.score` per server state, so that part cannot be in it:
    the placer adds the term to the score each time it compares servers. Read only from a
    profile's first scorer (the one that ranks; later scorers only break its ties).
    """

    def cycle_term(self) -> Term | None:
        """The term for this cycle, in the same unit as ``score``; None when there is none
        (then the placer pays nothing for it)."""
        ...


class CandidateSource(Protocol):
    """What a :class:`CandidateOrder` walks: a group's servers bucketed by free devices."""

    def buckets_ascending(self, minimum: int) -> Iterator[NodeState]: ...

    def buckets_descending(self, minimum: int) -> Iterator[NodeState]: ...

    def partial(self) -> Iterator[NodeState]: ...


@runtime_checkable
class CandidateOrder(Protocol):
    name: str

    def candidates(self, req: Request, source: CandidateSource) -> Iterator[NodeState]:
        """Servers that may fit ``req``, best-first for the profile; no server twice."""
        ...


@runtime_checkable
class VictimSelector(Protocol):
    name: str

    def select(
        self,
        req: Request,
        node: NodeState,
        candidates: list[RunningReplica],
        batch: int,
        now: float,
        max_victims: int | None = None,
    ) -> VictimSet | None:
        """The minimal victims among ``candidates`` so ``batch`` replicas fit on ``node``;
        with ``max_victims``, None when no set of at most that many victims fits (the
        caller already holds a set that any larger one would lose to)."""
        ...


@dataclass(frozen=True, slots=True)
class Profile:
    """A named configuration of plugins, built once by the registry (and, when a scorer
    is a :class:`PreScore`, once more per cycle with that cycle's scorers)."""

    name: str
    admission: tuple[AdmissionCheck, ...]
    static_filters: tuple[StaticFilter, ...]
    filters: tuple[Filter, ...]
    scorers: tuple[Scorer, ...]
    order: CandidateOrder
    victims: VictimSelector

    def for_cycle(self, cycle: CycleState, queue: Sequence[Request]) -> Profile:
        """This profile with each :class:`PreScore` scorer prepared for one cycle, and
        without the :class:`Conditional` checks and filters that do not apply to it."""
        scorers = tuple(
            s.prepare(cycle, queue) if isinstance(s, PreScore) else s for s in self.scorers
        )
        if all(new is old for new, old in zip(scorers, self.scorers, strict=True)):
            scorers = self.scorers
        admission = tuple(a for a in self.admission if _applies(a, cycle))
        filters = tuple(f for f in self.filters if _applies(f, cycle))
        if (
            scorers is self.scorers
            and len(admission) == len(self.admission)
            and len(filters) == len(self.filters)
        ):
            return self
        return Profile(
            self.name,
            admission,
            self.static_filters,
            filters,
            scorers,
            self.order,
            self.victims,
        )


@runtime_checkable
class Conditional(Protocol):
    """An admission check or filter that may have nothing to do in a cycle (optional):
    :meth:`Profile.for_cycle` leaves it out then, so it costs nothing on the hot path."""

    def applies(self, cycle: CycleState) -> bool:
        """Whether the plugin can refuse anything in ``cycle``."""
        ...


def _applies(plugin: object, cycle: CycleState) -> bool:
    return not isinstance(plugin, Conditional) or plugin.applies(cycle)
