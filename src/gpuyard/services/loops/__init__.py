"""Background loops: how periodic work runs in a gpuyard process.

Owns the loop runner (one thread per loop, interval, jitter, wake-ups), loop leases (each
loop ticks in one process of the deployment at a time) and per-item isolation (one bad
item never stops a loop). Which loops exist is assembled in `gpuyard.services.background`.
"""
