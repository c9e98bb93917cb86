"""GET /metrics's body: this process's instruments and the collectors on its registry."""

from __future__ import annotations

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from gpuyard.services.context import ServiceContext

#: The classic text format (0.0.4), which every Prometheus version reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def render_metrics(ctx: ServiceContext) -> bytes:
    """Everything the context's registry holds, in the Prometheus text format: the
    process's counters and histograms, the bus's state and the fleet read now."""
    return ctx.metrics.render()
