"""Where the CLI keeps the server URL and token: ~/.config/gpuyard/credentials.json (0600).
GPUYARD_URL and GPUYARD_TOKEN override it (for scripts and CI)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpuyard" / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str | None


def load_credentials() -> Credentials:
    stored: dict[str, str] = {}
    path = credentials_path()
    if path.exists():
        stored = json.loads(path.read_text())
    return Credentials(
        url=os.environ.get("GPUYARD_URL") or stored.get("url") or DEFAULT_URL,
        token=os.environ.get("GPUYARD_TOKEN") or stored.get("token"),
    )


def save_credentials(url: str, token: str) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token}, handle)
    return path
