"""What the engine derives from one :class:`ServerView`, computed once per view object.

The services layer's snapshot cache hands the engine the *same* immutable ``ServerView``
objects cycle after cycle for every server that did not change. Everything a cycle derives
from a view alone (device positions, models, the devices matching a model, whole free
devices per model at the snapshot's allocation, static-filter verdicts) is therefore kept in
a :class:`ViewInfo` per view object, in a :class:`ViewCache` the caller owns and hands to
every cycle (``EngineCache.views``), and reused while that object is handed in again,
instead of being recomputed for every server in every cycle.

Why this cannot change a decision:

- a ``ServerView`` and everything it holds are frozen (``labels`` is a plain mapping the
  snapshot builders never mutate after building the view), so anything computed from the
  object alone stays true for as long as the object exists;
- the cache is keyed by ``id(view)`` *and* every entry keeps a strong reference to its view
  and is only used when ``entry.view is view``: an id can never be reused while its entry
  lives, and a stale entry can never answer for a different object;
- per-cycle working state (free counters, allocations after assumes, running replicas,
  holds) is never cached here: :class:`~gpuyard.scheduler.state.NodeState` copies the base
  values and mutates only its own copies;
- static-filter verdicts are cached per *verdict key* (see
  :meth:`ViewCache.verdict_token`), which names the filter plugin objects and every
  request field the built-in static filters read, so a verdict is only reused for a
  question with the same answer.

The cache is bounded (:meth:`ViewCache.retain`) to about two fleets' worth of views, so
views of servers that changed or vanished are dropped and memory does not grow with time.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.scheduler.gpu_match import ModelKey, device_matches
from gpuyard.scheduler.snapshot import ServerView

#: A static-filter verdict for one (verdict key, view): None when every filter passes,
#: else the first failing verdict (a ``framework.Status``; typed loosely to avoid an
#: import cycle).
Verdict = object | None

#: Verdict-key tokens to keep before starting over (distinct groups x profiles seen).
_MAX_TOKENS = 4096
#: Cached verdicts per view before starting over (bounds a view that lives very long).
_MAX_VERDICTS_PER_VIEW = 256


class ViewInfo:
    """Derived, immutable-in-meaning data of one ``ServerView`` (see the module doc).

    ``dev_alloc`` / ``free_*`` are the snapshot's values; consumers copy them before
    changing anything. ``pos_of`` and the ``matching`` tuples are shared read-only.
    """

    __slots__ = (
        "base_buckets",
        "dev_alloc",
        "dev_index",
        "dev_memory",
        "free_cpu",
        "free_gpu",
        "free_ram",
        "free_storage",
        "gpu_models",
        "id",
        "matching",
        "model_class",
        "name",
        "pos_of",
        "verdicts",
        "view",
    )

    def __init__(self, view: ServerView) -> None:
        free = view.free
        gpus = view.gpus
        self.view = view
        self.id = view.id
        self.name = view.name or view.id
        self.free_cpu = free.cpu_milli
        self.free_ram = free.ram_mib
        self.free_storage = free.storage_mib
        self.free_gpu = free.gpu_milli
        self.dev_index: tuple[int, ...] = tuple(g.index for g in gpus)
        self.dev_alloc: tuple[int, ...] = tuple(g.allocated_milli for g in gpus)
        #: Free GPU memory (MiB) of each device, as snapshotted.
        self.dev_memory: tuple[int, ...] = tuple(g.free_memory_mib for g in gpus)
        self.pos_of: dict[int, int] = {g.index: p for p, g in enumerate(gpus)}
        self.gpu_models: tuple[str, ...] = tuple(g.model for g in gpus)
        #: The set of device models on the server: the placer caps candidates per class.
        self.model_class: frozenset[str] = frozenset(self.gpu_models)
        self.matching: dict[ModelKey, tuple[int, ...]] = {}
        #: Model -> (whole free devices, has a partly used device) at ``dev_alloc``.
        self.base_buckets: dict[ModelKey, tuple[int, bool]] = {}
        self.verdicts: dict[int, Verdict] = {}

    def matching_positions(self, model: ModelKey) -> tuple[int, ...]:
        """Positions of the devices of ``model`` (all devices for None)."""
        found = self.matching.get(model)
        if found is None:
            models = self.gpu_models
            found = tuple(p for p, m in enumerate(models) if device_matches(model, m))
            self.matching[model] = found
        return found

    def base_bucket(self, model: ModelKey) -> tuple[int, bool]:
        """Whole free devices of ``model`` and whether one is partly used, as snapshotted."""
        found = self.base_buckets.get(model)
        if found is None:
            found = bucket_of(self.dev_alloc, self.matching_positions(model))
            self.base_buckets[model] = found
        return found

    def verdict(self, token: int) -> tuple[bool, Verdict]:
        """``(known, verdict)`` for a verdict token from :meth:`ViewCache.verdict_token`."""
        verdicts = self.verdicts
        if token in verdicts:
            return True, verdicts[token]
        return False, None

    def remember(self, token: int, verdict: Verdict) -> None:
        """Keep a computed verdict for ``token`` (bounded per view)."""
        if len(self.verdicts) >= _MAX_VERDICTS_PER_VIEW:
            self.verdicts = {}
        self.verdicts[token] = verdict


def bucket_of(alloc: tuple[int, ...] | list[int], positions: tuple[int, ...]) -> tuple[int, bool]:
    """Whole free devices among ``positions`` and whether one of them is partly used."""
    whole = 0
    partial = False
    for p in positions:
        used = alloc[p]
        if used == 0:
            whole += 1
        elif 0 < used < GPU_MILLI:
            partial = True
    return whole, partial


class ViewCache:
    """The :class:`ViewInfo` of each view object the engine was handed, and the verdict
    tokens (see the module doc). Owned by the caller, which passes the same cache to every
    cycle over the same views (``EngineCache.views``); a fresh one only saves work within
    one cycle. Thread-safe for concurrent cycles (the scheduling loop and GET /queue)."""

    def __init__(self) -> None:
        self._infos: dict[int, ViewInfo] = {}
        self._tokens: dict[Hashable, int] = {}
        self._next_token = itertools.count()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many views have a ViewInfo kept."""
        return len(self._infos)

    def info(self, view: ServerView) -> ViewInfo:
        """The :class:`ViewInfo` of ``view``, reused while the same object is passed in."""
        found = self._infos.get(id(view))
        if found is not None and found.view is view:
            return found
        found = ViewInfo(view)
        self._infos[id(view)] = found
        return found

    def retain(self, live: list[ViewInfo]) -> None:
        """Keep only ``live`` (this snapshot's views) once the cache holds well over that
        many entries, so views of changed or vanished servers do not pile up."""
        if len(self._infos) > 2 * len(live) + 1024:
            # A new dict rather than clear(): a concurrent cycle keeps a consistent old one.
            self._infos = {id(info.view): info for info in live}

    def verdict_token(self, key: Hashable) -> int:
        """A small int standing for a verdict key, so per-view lookups hash an int, not a
        tuple.

        Tokens are never reused (a fresh counter value for every new key, also after the
        token table is dropped), so a verdict cached under an old token can never answer a
        new key. The key holds strong references to the plugin objects it names, so their
        ids cannot be reused while the key is in the table.
        """
        found = self._tokens.get(key)
        if found is None:
            with self._lock:
                if len(self._tokens) >= _MAX_TOKENS:
                    self._tokens = {}
                found = self._tokens.setdefault(key, next(self._next_token))
        return found
