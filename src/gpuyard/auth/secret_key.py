"""The server's signing/encryption key: GPUYARD_SECRET_KEY, or a generated file (0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret_key(configured: str | None, path: Path) -> str:
    """Return the configured key, else the key stored at ``path``, creating it once."""
    if configured:
        return configured
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when several processes start together exactly one writes the key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
