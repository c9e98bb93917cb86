"""Per-user routing (issue 19): workload ports at /u/<user>/<workload id>/<port>/ through
an nginx reverse proxy whose config gpuyard writes, tests and reloads (docs/operations.md)."""
