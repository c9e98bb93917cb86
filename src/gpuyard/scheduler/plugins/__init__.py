"""Scheduler plugins, one module per plugin (wired by :mod:`gpuyard.scheduler.registry`)."""
