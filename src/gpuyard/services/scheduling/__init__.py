"""Scheduling: turning the queue into reservations.

Owns the scheduling cycle (snapshot -> pure `gpuyard.scheduler` engine -> atomic commit),
the snapshot the engine reads and its per-process cache, applying admissions and
preemptions, giving reservations back, the change watch that wakes the scheduler, and the
queue view with pending reasons.
"""
