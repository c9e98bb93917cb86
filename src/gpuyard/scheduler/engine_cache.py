"""What the engine keeps between cycles, owned by its caller.

The scheduler keeps no module-level state: a caller that runs cycle after cycle over the
same view objects (the services' snapshot cache hands back unchanged servers' views)
creates one :class:`EngineCache` and passes it to every
:func:`~gpuyard.scheduler.engine.schedule_cycle`; a call without one decides the same,
only without reusing work from earlier cycles.
"""

from __future__ import annotations

from gpuyard.scheduler.framework import Profile
from gpuyard.scheduler.registry import build_profile
from gpuyard.scheduler.view_info import ViewCache


class EngineCache:
    """Derived data of each view (:class:`~gpuyard.scheduler.view_info.ViewCache`) and the
    profiles built from the default registry. Thread-safe for concurrent cycles."""

    def __init__(self) -> None:
        self.views = ViewCache()
        self._profiles: dict[str, Profile] = {}

    def profile(self, name: str) -> Profile:
        """Profile ``name`` of the default registry, built on first use.

        Plugins keep no per-cycle state (a PreScore returns a fresh scorer per cycle), so
        one built profile serves every cycle."""
        found = self._profiles.get(name)
        if found is None:
            # setdefault: two cycles building at once keep the same one.
            found = self._profiles.setdefault(name, build_profile(name))
        return found
