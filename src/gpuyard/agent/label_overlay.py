"""Label overlays: labels the control plane set on a container after it was created.

Docker labels are fixed at create time, but a warm pool container changes hands (its
``status`` and ``user_id`` labels: available -> assigned to a user, and back). The agent
keeps those changes in one JSON file under its data dir (``label-overlays.json``), so
they survive an agent restart, and merges them over Docker's labels in everything it
reports about the container (get, list, create). Keys under ``gpuyard.`` stay the
agent's own: an overlay cannot change them. Entries of containers Docker no longer has
are dropped when the agent lists all its containers.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from gpuyard.agent.models import RESERVED_LABEL_PREFIX

FILE_NAME = "label-overlays.json"


class LabelOverlays:
    """container id -> labels set over Docker's, persisted in one file (atomic rename)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._overlays = self._load()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged file: the control plane sets the labels again
        if not isinstance(data, dict):
            return {}
        return {
            str(cid): {str(k): str(v) for k, v in labels.items()}
            for cid, labels in data.items()
            if isinstance(labels, dict)
        }

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._path.with_suffix(".tmp")
        temp.write_text(json.dumps(self._overlays, sort_keys=True), "utf-8")
        os.replace(temp, self._path)

    def set(self, container_id: str, labels: Mapping[str, str]) -> None:
        """Merge ``labels`` into the container's overlay (reserved keys refused earlier)."""
        with self._lock:
            current = self._overlays.setdefault(container_id, {})
            current.update(labels)
            self._save()

    def apply(self, container_id: str, labels: Mapping[str, str]) -> dict[str, str]:
        """Docker's ``labels`` with the container's overlay over them."""
        with self._lock:
            overlay = self._overlays.get(container_id)
        if not overlay:
            return dict(labels)
        merged = dict(labels)
        merged.update({k: v for k, v in overlay.items() if not k.startswith(RESERVED_LABEL_PREFIX)})
        return merged

    def keep_only(self, container_ids: Iterable[str]) -> None:
        """Forget the overlays of containers that are gone."""
        alive = set(container_ids)
        with self._lock:
            gone = [cid for cid in self._overlays if cid not in alive]
            if not gone:
                return
            for cid in gone:
                del self._overlays[cid]
            self._save()
