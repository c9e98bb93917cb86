"""Value types and rules. Imports nothing else from gpuyard."""
