"""Pure placement engine: filter, score, GPU slot choice, preemption, queue order, reasons.

Imports only ``gpuyard.domain``; does no I/O. The services layer builds a
:class:`~gpuyard.scheduler.snapshot.ClusterSnapshot`, calls
:func:`~gpuyard.scheduler.engine.schedule_cycle`, and commits each decision atomically.
"""
