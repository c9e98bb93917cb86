"""Host cleanup: what gpuyard left behind on this host, listed (dry run) or removed.

Only gpuyard's own things, each selected by this agent's label (``gpuyard.agent=<name>``),
never by name or age alone:

- **containers**: stopped (exited or dead) gpuyard containers that finished longer than the
  retention ago;
- **images**: dangling (untagged) images labelled by this agent (its builds carry the
  label) that no container uses;
- **volumes**: volumes labelled by this agent that no container mounts;
- **files**: workspace directories of workloads that have no container on this host any
  more, untouched for the retention.

Workloads the control plane still holds here (``keep_workloads``) keep their containers and
files whatever their age. Each item is checked again right before its removal (labels,
state, age, use); one that changed is ``skipped``. Docker itself refuses to remove a running
container, or an image or volume in use (no ``force`` is ever passed), which is the last
guard. One item that fails is reported with its error and the others go on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
from docker.errors import NotFound as DockerNotFound

from gpuyard.agent.cleanup_models import (
    CleanupItem,
    CleanupKind,
    CleanupOutcome,
    CleanupReport,
    CleanupRequest,
)
from gpuyard.agent.errors import DOCKER_ERRORS
from gpuyard.agent.files import Workspaces
from gpuyard.agent.models import LABEL_AGENT, LABEL_WORKLOAD, is_workload_id
from gpuyard.log import get_logger

log = get_logger(__name__)
_STOPPED = ("exited", "dead")
_NEVER = "0001-01-01T00:00:00Z"
#: Errors are shown to operators: bounded.
_MAX_ERROR = 500


class Changed(Exception):
    """The item is no longer what the listing saw (skipped, not failed)."""


@dataclass(frozen=True)
class _Candidate:
    kind: CleanupKind
    id: str
    name: str
    size_bytes: int


def docker_time(value: str | None) -> float | None:
    """Seconds since the epoch of one of Docker's timestamps (nanoseconds, ``Z``); None
    for its "never" and for what does not parse."""
    if not value or value == _NEVER:
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python parses at most 6 fractional digits
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def tree_bytes(path: str) -> int:
    """Apparent size of the regular files below ``path`` (links are not followed)."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(directory, name))
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return total


def _newest_change(path: str) -> float:
    """The latest modification time of a workload directory and its files directory."""
    times = [os.lstat(path).st_mtime]
    with contextlib.suppress(OSError):
        times.append(os.lstat(os.path.join(path, "files")).st_mtime)
    return max(times)


class HostCleaner:
    """Lists and removes this agent's leftovers on its Docker daemon and data dir."""

    def __init__(
        self,
        client: docker.DockerClient,
        agent_name: str,
        workspaces: Workspaces,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.agent_name = agent_name
        self.workspaces = workspaces
        self._clock = clock

    @property
    def _own(self) -> str:
        return f"{LABEL_AGENT}={self.agent_name}"

    def clean(self, request: CleanupRequest) -> CleanupReport:
        """A dry run lists what would go; a real run removes it, item by item."""
        keep = frozenset(request.keep_workloads)
        candidates = self._plan(request.retention_s, keep)
        if request.dry_run:
            items = [_item(c, "planned") for c in candidates]
            return _report(True, items, sum(c.size_bytes for c in candidates))
        items = [self._remove(c, request.retention_s, keep) for c in candidates]
        freed = sum(i.size_bytes for i in items if i.outcome == "removed")
        report = _report(False, items, freed)
        log.info(
            "host cleanup",
            removed=report.removed,
            failed=report.failed,
            skipped=report.skipped,
            freed_bytes=freed,
        )
        return report

    # -- listing -------------------------------------------------------------------------

    def _plan(self, retention_s: float, keep: frozenset[str]) -> list[_Candidate]:
        """Everything to remove now, containers first: a workload whose every container
        goes in this run has its files directory listed too (removed after them)."""
        all_containers = self.client.api.containers(all=True)
        used_images = {str(c.get("ImageID") or "") for c in all_containers}
        containers = self._stopped_containers(retention_s, keep)
        going = {c.id for c in containers}
        staying = {
            (c.get("Labels") or {}).get(LABEL_WORKLOAD, "")
            for c in all_containers
            if (c.get("Labels") or {}).get(LABEL_AGENT) == self.agent_name
            and str(c.get("Id")) not in going
        }
        return [
            *containers,
            *self._dangling_images(used_images - {""}),
            *self._orphaned_volumes(),
            *self._orphaned_files(retention_s, keep | staying),
        ]

    def _stopped_containers(self, retention_s: float, keep: frozenset[str]) -> list[_Candidate]:
        found = self.client.api.containers(
            all=True,
            size=True,
            filters={"label": [self._own, LABEL_WORKLOAD], "status": list(_STOPPED)},
        )
        candidates = []
        for summary in found:
            container_id = str(summary["Id"])
            with contextlib.suppress(Changed, *DOCKER_ERRORS):
                attrs = self.client.api.inspect_container(container_id)
                self._check_container(attrs, retention_s, keep)
                candidates.append(
                    _Candidate(
                        "container",
                        container_id,
                        str(attrs.get("Name", "")).lstrip("/"),
                        int(summary.get("SizeRw") or 0),
                    )
                )
        return candidates

    def _check_container(
        self, attrs: dict[str, Any], retention_s: float, keep: frozenset[str]
    ) -> None:
        """Changed unless the container is this agent's, stopped past the retention, and
        of a workload the control plane no longer holds."""
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        state = attrs.get("State") or {}
        if labels.get(LABEL_AGENT) != self.agent_name or LABEL_WORKLOAD not in labels:
            raise Changed("not this agent's container")
        if labels[LABEL_WORKLOAD] in keep:
            raise Changed("its workload is still held on this host")
        if state.get("Running") or state.get("Status") not in _STOPPED:
            raise Changed(f"container is {state.get('Status')}")
        finished = docker_time(state.get("FinishedAt")) or docker_time(attrs.get("Created"))
        if finished is None or self._clock() - finished < retention_s:
            raise Changed("stopped more recently than the retention")

    def _dangling_images(self, used: set[str]) -> list[_Candidate]:
        found = self.client.api.images(filters={"dangling": True, "label": self._own})
        return [
            _Candidate("image", str(i["Id"]), str(i["Id"])[:19], int(i.get("Size") or 0))
            for i in found
            if str(i["Id"]) not in used
        ]

    def _orphaned_volumes(self) -> list[_Candidate]:
        listed = self.client.api.volumes(filters={"dangling": True, "label": self._own})
        volumes = (listed or {}).get("Volumes") or []
        if not volumes:
            return []
        sizes = self._volume_sizes()
        return [
            _Candidate("volume", str(v["Name"]), str(v["Name"]), sizes.get(str(v["Name"]), 0))
            for v in volumes
        ]

    def _volume_sizes(self) -> dict[str, int]:
        """Docker's own figure for each volume (``docker system df``); 0 where unknown."""
        try:
            usage = self.client.api.df()
        except DOCKER_ERRORS:
            return {}
        sizes = {}
        for volume in usage.get("Volumes") or []:
            size = int(((volume.get("UsageData") or {}).get("Size")) or 0)
            sizes[str(volume.get("Name"))] = max(size, 0)
        return sizes

    def _orphaned_files(self, retention_s: float, keep: frozenset[str]) -> list[_Candidate]:
        candidates = []
        for workload_id in self._workspace_ids():
            with contextlib.suppress(Changed, OSError):
                self._check_files(workload_id, retention_s, keep)
                path = str(self.workspaces.workload_dir(workload_id))
                candidates.append(_Candidate("files", workload_id, path, tree_bytes(path)))
        return candidates

    def _workspace_ids(self) -> Iterable[str]:
        try:
            names = sorted(os.listdir(self.workspaces.root))
        except FileNotFoundError:
            return []
        return [n for n in names if is_workload_id(n)]

    def _check_files(self, workload_id: str, retention_s: float, keep: frozenset[str]) -> None:
        path = self.workspaces.workload_dir(workload_id)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise Changed("not a directory")
        if workload_id in keep:
            raise Changed("its workload is still held on this host")
        if self._clock() - _newest_change(str(path)) < retention_s:
            raise Changed("changed more recently than the retention")

    # -- removal -------------------------------------------------------------------------

    def _remove(self, item: _Candidate, retention_s: float, keep: frozenset[str]) -> CleanupItem:
        try:
            size = self._recheck_and_remove(item, retention_s, keep)
        except Changed as exc:
            return _item(item, "skipped", str(exc))
        except (DockerNotFound, FileNotFoundError):  # another cleanup was first
            return _item(item, "skipped", "already gone")
        except DOCKER_ERRORS as exc:
            explanation = getattr(exc, "explanation", None) or str(exc)
            return _item(item, "failed", f"Docker: {explanation}"[:_MAX_ERROR])
        except OSError as exc:
            return _item(
                item, "failed", f"{exc.strerror or exc}: {exc.filename or ''}"[:_MAX_ERROR]
            )
        except Exception as exc:  # one item's trouble never stops the others
            log.warning("cleanup item failed", kind=item.kind, id=item.id, error=repr(exc))
            return _item(item, "failed", f"{type(exc).__name__}"[:_MAX_ERROR])
        return CleanupItem(
            kind=item.kind, id=item.id, name=item.name, size_bytes=size, outcome="removed"
        )

    def _recheck_and_remove(
        self, item: _Candidate, retention_s: float, keep: frozenset[str]
    ) -> int:
        """Check the item is still what was listed, remove it; the bytes it freed."""
        api = self.client.api
        match item.kind:
            case "container":
                attrs = api.inspect_container(item.id)
                self._check_container(attrs, retention_s, keep)
                api.remove_container(item.id, v=False, force=False)
                return item.size_bytes
            case "image":
                attrs = api.inspect_image(item.id)  # type: ignore[no-untyped-call]
                labels = (attrs.get("Config") or {}).get("Labels") or {}
                if labels.get(LABEL_AGENT) != self.agent_name:
                    raise Changed("not this agent's image")
                if attrs.get("RepoTags"):
                    raise Changed("image is tagged again")
                if api.containers(all=True, filters={"ancestor": item.id}):
                    raise Changed("a container uses the image")
                size = int(attrs.get("Size") or 0)
                api.remove_image(item.id, force=False, noprune=False)
                return size
            case "volume":
                attrs = api.inspect_volume(item.id)
                if (attrs.get("Labels") or {}).get(LABEL_AGENT) != self.agent_name:
                    raise Changed("not this agent's volume")
                if api.containers(all=True, filters={"volume": item.id}):
                    raise Changed("a container mounts the volume")
                api.remove_volume(item.id, force=False)
                return item.size_bytes
            case "files":
                if api.containers(
                    all=True, filters={"label": [self._own, f"{LABEL_WORKLOAD}={item.id}"]}
                ):
                    raise Changed("the workload has a container on this host again")
                self._check_files(item.id, retention_s, keep)
                path = str(self.workspaces.workload_dir(item.id))
                size = tree_bytes(path)
                shutil.rmtree(path)  # never follows links
                return size
        raise AssertionError(item.kind)  # pragma: no cover - every kind is matched


def _item(candidate: _Candidate, outcome: CleanupOutcome, error: str | None = None) -> CleanupItem:
    return CleanupItem(
        kind=candidate.kind,
        id=candidate.id,
        name=candidate.name,
        size_bytes=candidate.size_bytes if outcome in ("planned", "removed") else 0,
        outcome=outcome,
        error=error,
    )


def _report(dry_run: bool, items: list[CleanupItem], total: int) -> CleanupReport:
    return CleanupReport(
        dry_run=dry_run,
        items=items,
        total_bytes=total,
        removed=sum(1 for i in items if i.outcome == "removed"),
        failed=sum(1 for i in items if i.outcome == "failed"),
        skipped=sum(1 for i in items if i.outcome == "skipped"),
    )
