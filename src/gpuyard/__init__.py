"""gpuyard: a self-hosted GPU and container resource manager for teams that share servers."""

__version__ = "0.1.0"
