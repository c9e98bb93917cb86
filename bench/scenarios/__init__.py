"""One module per scenario; each exposes ``run(mode, pg) -> ScenarioResult``.

``mode`` is ``quick`` (``make bench``), ``full`` (``make bench-full``, the sizes issue 8 names)
or ``smoke`` (trivial sizes, for tests/bench); ``pg`` makes PostgreSQL databases, or is None
where no PostgreSQL server is available.
"""

from __future__ import annotations

#: Scenario id -> module under bench.scenarios, in the order they run and print.
SCENARIOS = {
    "S1": "s1_throughput",
    "S2": "s2_concurrency",
    "S3": "s3_preemption",
    "S4": "s4_fairness",
    "S5": "s5_trace",
    "S6": "s6_live",
    "S7": "s7_dashboard",
    "S8": "s8_pools",
    "S9": "s9_kueue",
}
#: Scenarios with PostgreSQL rows (the server is started only if one of them runs).
NEEDS_POSTGRES = {"S1", "S2", "S6"}
#: Helper modules whose docstrings are part of a scenario's method in docs/benchmarks.md.
EXTRA_METHODS = {"S1": ("s1_end_to_end", "s1_server_profile")}
