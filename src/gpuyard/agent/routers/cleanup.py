"""Host cleanup: /v1/cleanup (stopped containers, dangling images, orphaned volumes and
files directories, all of them gpuyard's own; ``gpuyard.agent.cleanup``)."""

from __future__ import annotations

from fastapi import APIRouter

from gpuyard.agent.cleanup_models import CleanupReport, CleanupRequest
from gpuyard.agent.errors import DOCKER_ERRORS, from_docker
from gpuyard.agent.state import AgentDep

router = APIRouter(prefix="/cleanup", tags=["cleanup"])


@router.post("")
def clean_host(body: CleanupRequest, agent: AgentDep) -> CleanupReport:
    """A dry run lists what would go, with sizes; a real run removes it and says, item by
    item, what it removed, what changed meanwhile (skipped) and what failed."""
    try:
        return agent.cleaner.clean(body)
    except DOCKER_ERRORS as exc:  # the listing itself failed: nothing was removed
        raise from_docker(exc) from exc
