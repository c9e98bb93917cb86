"""Orders a list of workloads can be asked for (GET /workloads?sort=). Each order ends in
a deterministic tie-break (newest first, then id), so pages never overlap or skip."""

from __future__ import annotations

from enum import StrEnum


class WorkloadSort(StrEnum):
    #: Newest first (the default).
    NEWEST = "newest"
    OLDEST = "oldest"
    #: By name, A to Z.
    NAME = "name"
    #: Highest priority (5) first.
    PRIORITY = "priority"
    #: By status name, A to Z.
    STATUS = "status"
