"""Workloads: what a user asked to run and everything that happens to it afterwards.

Owns submission (validated, quota-checked, group-committed), reads and events, the changes
a user makes (resize, re-prioritise, stop, delete), the one path by which a workload's
status changes (`transitions`), the time-driven lifecycle (backoff, completion, expiry),
and a running workload's logs, exec and files through its runtime.
"""
