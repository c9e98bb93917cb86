"""Where the CLI keeps its logins: ~/.config/gpuyard/credentials.json (0600), one *context*
(a server URL and its token) per gpuyard the user works with, and which one is current.

GPUYARD_URL and GPUYARD_TOKEN override the saved login (for scripts and CI);
GPUYARD_CONTEXT picks a context for one command. A file written by an older version (one
``{"url", "token"}``) reads as a single context named ``default``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_CONTEXT = "default"


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpuyard" / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str | None
    #: The saved context these came from (None: only the environment or the default URL).
    context: str | None = None


@dataclass
class CredentialStore:
    """Every saved context and the current one's name."""

    contexts: dict[str, dict[str, str]] = field(default_factory=dict)
    current: str | None = None

    @classmethod
    def load(cls) -> CredentialStore:
        path = credentials_path()
        if not path.exists():
            return cls()
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CredentialsUnreadable(f"{path} is not readable JSON ({exc}); remove it") from exc
        if not isinstance(stored, dict):
            raise CredentialsUnreadable(f"{path} is not a JSON object; remove it")
        if "contexts" not in stored:  # the single-login format of earlier versions
            if "url" not in stored:
                return cls()
            single = {"url": str(stored["url"]), "token": str(stored.get("token") or "")}
            return cls({DEFAULT_CONTEXT: single}, DEFAULT_CONTEXT)
        contexts = {
            str(name): {
                "url": str(entry.get("url", DEFAULT_URL)),
                "token": str(entry.get("token") or ""),
            }
            for name, entry in dict(stored["contexts"]).items()
            if isinstance(entry, dict)
        }
        current = stored.get("current")
        return cls(contexts, str(current) if current in contexts else None)

    def save(self) -> Path:
        path = credentials_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # A new file, 0600 from its creation, renamed over the old one: an existing file
        # made readable by others (or by an older version) does not stay so, and a crash
        # mid-write leaves the previous logins intact.
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump({"current": self.current, "contexts": self.contexts}, handle, indent=2)
        os.replace(staging, path)
        return path


class CredentialsUnreadable(Exception):
    """The credentials file exists but cannot be used."""


def context_name_for(url: str) -> str:
    """The context a login to ``url`` is saved under unless named: its host and port."""
    parts = urlsplit(url)
    return parts.netloc or DEFAULT_CONTEXT


def load_credentials() -> Credentials:
    """The URL and token a command uses: the environment's, else GPUYARD_CONTEXT's or the
    current context's, else the default URL without a token."""
    store = CredentialStore.load()
    name = os.environ.get("GPUYARD_CONTEXT") or store.current
    saved = store.contexts.get(name or "", {})
    env_token = os.environ.get("GPUYARD_TOKEN")
    return Credentials(
        url=os.environ.get("GPUYARD_URL") or saved.get("url") or DEFAULT_URL,
        token=env_token or saved.get("token") or None,
        # A token from the environment is not the context's: logout must not forget it.
        context=name if saved and not env_token else None,
    )


def save_credentials(url: str, token: str, context: str | None = None) -> Path:
    """Save a login as ``context`` (by default named after the URL's host:port) and make
    it the current one."""
    store = CredentialStore.load()
    name = context or context_name_for(url)
    store.contexts[name] = {"url": url, "token": token}
    store.current = name
    return store.save()


def forget_token(context: str | None) -> None:
    """Drop a context's token (after logout), keeping its URL for the next login."""
    store = CredentialStore.load()
    if context in store.contexts:
        store.contexts[context]["token"] = ""
        store.save()
