"""The docker runtime's host cleanup: the agent's ``POST /v1/cleanup``, its report as
``domain.cleanup_records`` values."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from gpuyard.agent.cleanup_models import CleanupReport, CleanupRequest
from gpuyard.domain.cleanup_records import (
    CleanupEntry,
    CleanupKind,
    CleanupOutcome,
    CleanupPolicy,
    HostCleanupReport,
)

if TYPE_CHECKING:
    from gpuyard.runtimes.docker import AgentClient

#: Sizing containers and walking files directories of a busy host takes a while.
CLEANUP_TIMEOUT = httpx.Timeout(300.0, connect=3.0)


def cleanup_report_of(report: CleanupReport) -> HostCleanupReport:
    """The neutral record of the agent's cleanup report."""
    return HostCleanupReport(
        dry_run=report.dry_run,
        items=tuple(
            CleanupEntry(
                kind=CleanupKind(item.kind),
                id=item.id,
                name=item.name,
                size_bytes=item.size_bytes,
                outcome=CleanupOutcome(item.outcome),
                error=item.error,
            )
            for item in report.items
        ),
        total_bytes=report.total_bytes,
    )


class AgentCleanup:
    """Host cleanup of the docker runtime over ``_client_for(server_name)``."""

    _client_for: Callable[[str], AgentClient]

    def clean_host(self, server_name: str, policy: CleanupPolicy) -> HostCleanupReport:
        request = CleanupRequest(
            dry_run=policy.dry_run,
            retention_s=policy.retention_s,
            keep_workloads=sorted(policy.keep_workloads),
        )
        # A real run is not retried: a lost answer would only be a second, emptier run,
        # but its report (what was freed) would be lost with the first.
        answer = self._client_for(server_name).post_json(
            "/v1/cleanup",
            json=request.model_dump(mode="json"),
            timeout=CLEANUP_TIMEOUT,
            retry=policy.dry_run,
        )
        return cleanup_report_of(CleanupReport.model_validate(answer))
