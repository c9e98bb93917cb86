"""Workload priorities: 1 (lowest) to 5 (highest), default 3."""

from __future__ import annotations

MIN_PRIORITY = 1
MAX_PRIORITY = 5
DEFAULT_PRIORITY = 3
