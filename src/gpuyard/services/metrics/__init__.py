"""Prometheus metrics (issue 19): this process's counters and histograms
(``instruments``), the fleet and queue read from the database at scrape time
(``fleet``), rendered by GET /metrics."""
