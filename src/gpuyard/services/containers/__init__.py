"""Containers: the replicas the scheduler placed, made real on a runtime.

Owns the starter loop (create and start what was placed), the cleanup loop (stop and
remove what was released), the reconcile loop (what runtimes report -> workload status,
and recovery), the replica specs handed to a runtime, and host port allocation.
"""
