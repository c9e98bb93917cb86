"""Pure placement engine: filter, score, GPU slot choice, preemption, queue order, reasons.

Imports only ``gpuyard.domain``; does no I/O. The services layer builds a
:class:`~gpuyard.scheduler.snapshot.ClusterSnapshot`, calls
:func:`~gpuyard.scheduler.engine.schedule_cycle`, and commits each decision atomically.
No names are re-exported here; import from the modules:

- ``engine.schedule_cycle`` — one cycle: admissions (with victims) and pending reasons;
- ``engine_cache.EngineCache`` — what a caller keeps between its cycles and passes in (the
  package keeps no module-level caches or state of its own);
- ``resize.resize_in_place`` — whether a resized replica still fits where it runs;
- ``queue.order_queue`` / ``queue.queue_key`` — the order ``GET /queue`` shows;
- ``fairshare.FairShareTree`` — hierarchical quotas: fair shares, borrowing, the queue's
  fair-share key, reclaim plans, Jain's index (``GET /fairshare``, bench S4);
- ``usage_decay`` — time-based fair share: decayed past usage and Slurm's factor the
  fair-share key mixes in (``GPUYARD_FAIRSHARE_HALF_LIFE_S``; accrued by the history loop);
- ``registry.build_profile`` / ``registry.PROFILES`` — plugin profiles ``pack`` (default:
  fragmentation-aware, plugins/fgd.py), ``binpack``, ``spread``, ``fgd``;
- ``snapshot`` and ``decisions`` — the input and output types.

Module map: ``framework`` (phases as Protocols, Status), ``plugins/`` (one module per
plugin), ``request`` (per-cycle PreFilter state), ``state`` (working copy: assume/forget),
``index`` (servers bucketed by free GPUs), ``placement`` (filter + score one replica),
``gpu_slots`` and ``gpu_match`` (device choice, model rule), ``preemption``, ``starvation``,
``reasons``.
"""
