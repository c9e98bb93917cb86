"""The per-host agent: inventory (psutil, NVML / nvidia-smi), Docker lifecycle, logs, exec, files.

Runs as ``gpuyard agent`` on every Docker host; the control plane talks to it over HTTP with
a bearer token (``gpuyard.runtimes.docker.AgentClient``). The wire models are in
``gpuyard.agent.models``.
"""
