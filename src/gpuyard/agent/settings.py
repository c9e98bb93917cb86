"""The agent's settings: one validated object from GPUYARD_AGENT_* variables and CLI flags."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_TOKEN_LENGTH = 16
_UNSAFE_TOKENS = {"changethis", "changeme", "secret", "token", "password"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _default_name() -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:63].strip("-.")
    return name or "agent"


class AgentSettings(BaseSettings):
    """Everything ``gpuyard agent`` reads from its environment. Paths derive from ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="GPUYARD_AGENT_", extra="ignore")

    token: SecretStr
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    #: This agent's name; every container it creates is labelled gpuyard.agent=<name>, and it
    #: only ever sees containers with its own name (two agents may share one dockerd).
    name: str = Field(default_factory=_default_name)
    #: Docker Engine API address; None uses DOCKER_HOST or the default unix socket.
    docker_host: str | None = None
    docker_timeout_s: float = Field(default=60.0, gt=0)
    data_dir: Path = Field(default=Path("./gpuyard-agent-data"))
    #: Host address that published container ports bind to.
    publish_address: str = "127.0.0.1"
    #: Largest single upload, and the workspace quota when a spec gives no storage_mib.
    max_upload_mib: int = Field(default=1024, gt=0)
    default_workspace_mib: int = Field(default=10 * 1024, gt=0)
    default_pids_limit: int = Field(default=4096, gt=0)
    #: The longest a pull, build or push may run before the agent stops following it.
    image_deadline_s: float = Field(default=3600.0, gt=0)
    #: Also pass storage_opt size=<storage_mib> to Docker (overlay2 on xfs with pquota, btrfs,
    #: zfs); other storage drivers refuse it, so it is off unless the host supports it.
    storage_opt_size: bool = False
    log_level: str = "INFO"
    log_json: bool = False
    #: Serve HTTPS with this certificate and key (PEM files; both or neither). The control
    #: plane pins the certificate at registration (``gpuyard agent install`` makes a
    #: self-signed one on the host).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @field_validator("token")
    @classmethod
    def _reject_weak_token(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret.strip().lower() in _UNSAFE_TOKENS or len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the agent token must be at least {MIN_TOKEN_LENGTH} characters and not a "
                "placeholder; generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("letters, digits, '_', '.', '-' only (at most 63, no leading '-')")
        return value

    @model_validator(mode="after")
    def _tls_both_or_neither(self) -> AgentSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both tls_cert and tls_key (or neither)")
        return self

    @property
    def workloads_dir(self) -> Path:
        return self.data_dir / "workloads"

    def workload_dir(self, workload_id: str) -> Path:
        """Per-workload state: ``meta.json`` and the ``files`` directory (mounted at
        the spec's files_path)."""
        return self.workloads_dir / workload_id

    def workspace_dir(self, workload_id: str) -> Path:
        return self.workload_dir(workload_id) / "files"
