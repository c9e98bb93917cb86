"""Use cases and background loops: the only layer combining store, runtimes and scheduler."""
