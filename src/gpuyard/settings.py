"""One validated settings object, read from GPUYARD_* variables and CLI flags."""

from __future__ import annotations

import re
from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpuyard.domain.emails import InvalidEmail, normalise_email
from gpuyard.domain.resources import GpuShareRule
from gpuyard.domain.usage import MINUTE_BUCKET_S, QUARTER_BUCKET_S, longest_window_served

IPNetwork = IPv4Network | IPv6Network

_UNSAFE_SECRETS = {"changethis", "secret", "changeme", ""}
MIN_METRICS_TOKEN_LENGTH = 24
#: A URL that may be written into nginx's config as it is (routing URLs).
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\[\]:-]{1,300}(/[A-Za-z0-9._~/-]{0,200})?")
#: The history level (domain.usage: 0 is raw samples) each retention setting keeps.
_HISTORY_LEVELS = {
    "history_raw_retention_s": 0,
    "history_minute_retention_s": MINUTE_BUCKET_S,
    "history_quarter_retention_s": QUARTER_BUCKET_S,
}


class Settings(BaseSettings):
    """Everything gpuyard reads from its environment. Paths derive from ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="GPUYARD_", extra="ignore")

    data_dir: Path = Field(default=Path("./gpuyard-data"))
    database_url: str | None = None
    #: Redis (redis://host:port/db): the cross-process bus (wake-ups, changes for the
    #: live stream, revocations) and the shared login throttle (services/bus). Optional:
    #: without it PostgreSQL's LISTEN/NOTIFY carries the notices, and SQLite needs none.
    redis_url: str | None = None
    #: Whether processes tell each other of their commits at all (services/bus); false:
    #: they poll (the change watch, the live feed's reads), as with one SQLite process.
    change_bus: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    demo: bool = False

    admin_email: str = "admin@gpuyard.local"
    admin_password: str | None = None
    secret_key: str | None = None
    #: Comma-separated former secret keys: they still decrypt secrets they encrypted.
    previous_secret_keys: str | None = None
    access_token_minutes: int = Field(default=60 * 12, ge=1)
    #: Send the session cookie only over HTTPS (turn on behind TLS).
    session_cookie_secure: bool = False
    #: How long a resolved bearer token is trusted without asking the database again
    #: (auth/caller_cache.py); changes made by this process apply at once. 0 = off.
    caller_cache_s: float = Field(default=2.0, ge=0)
    invite_ttl_hours: float = Field(default=72.0, gt=0)
    #: How long a team admin's invitation to join a team waits for the user's answer.
    team_invitation_ttl_hours: float = Field(default=24.0 * 7, gt=0, le=24.0 * 90)
    # Login throttling (per process, auth/login_throttle.py): attempts per client address;
    # failures per account from one address; failures per account from all addresses.
    login_ip_max_attempts: int = Field(default=30, ge=1)
    login_ip_window_s: float = Field(default=60.0, gt=0)
    login_account_max_failures: int = Field(default=5, ge=1)
    login_account_window_s: float = Field(default=300.0, gt=0)
    login_account_total_max_failures: int = Field(default=100, ge=1)
    login_account_total_window_s: float = Field(default=3600.0, gt=0)
    #: Comma-separated addresses and CIDR networks of reverse proxies whose
    #: X-Forwarded-For is believed (api/client_address.py); empty = none, the peer is the
    #: client.
    trusted_proxies: str = ""

    scheduler_profile: str = "pack"
    scheduler_interval_s: float = 2.0
    #: How often a process with loops checks for other processes' commits (0 = never).
    change_watch_interval_s: float = Field(default=0.2, ge=0)
    #: The live stream (GET /api/v1/stream, services/live/): how often this process reads
    #: the database's changes while a stream is open, the keep-alive comment's period, the
    #: reconnection delay it suggests to clients, how many recent events it keeps for
    #: Last-Event-ID resumes, how many events one slow client may have waiting before it
    #: is told to resync, and how often an open stream re-checks its caller's credentials
    #: and teams.
    stream_poll_interval_s: float = Field(default=0.2, gt=0, le=60)
    stream_keepalive_s: float = Field(default=15.0, gt=0, le=3600)
    stream_retry_ms: int = Field(default=3000, ge=0, le=600_000)
    stream_history: int = Field(default=4096, ge=1, le=1_000_000)
    stream_client_queue: int = Field(default=1024, ge=1, le=1_000_000)
    stream_recheck_s: float = Field(default=30.0, gt=0, le=86400)
    #: Every background loop with a lease (the scheduler, lifecycle, starter, health,
    #: reconcile, cleanup) ticks in one process of the deployment at a time, through lease
    #: rows in the database (services/loops/leases.py): None = on with PostgreSQL (several
    #: processes), off with the embedded SQLite. The name predates the other loops' leases.
    scheduler_lease: bool | None = None
    #: The priority policy (domain/priority.py): the highest priority each role may give
    #: its workloads (submit or PATCH above it is a 422 naming ``priority``); a team's
    #: ``max_priority`` may lower it further for that team's work.
    max_priority_user: int = Field(default=3, ge=1, le=5)
    max_priority_operator: int = Field(default=5, ge=1, le=5)
    max_priority_admin: int = Field(default=5, ge=1, le=5)
    #: The quota of each user in no team (admins exempt): cores, GB, GPUs held at once;
    #: None (the default) leaves that dimension unlimited. Enforced by the scheduler as
    #: a team's quota is (scheduler/plugins/quota.py).
    teamless_quota_cpu: float | None = Field(default=None, ge=0, le=1_000_000)
    teamless_quota_ram_gb: float | None = Field(default=None, ge=0, le=100_000_000)
    teamless_quota_gpu: float | None = Field(default=None, ge=0, le=1_000_000)
    starvation_seconds: float = 600.0
    min_runtime_seconds: float = 0.0
    preemption_backoff_initial_s: float = 10.0
    preemption_backoff_max_s: float = 600.0
    stop_grace_period_s: float = 30.0
    #: Shares of one GPU a request may ask for (domain/resources.py ``GpuShareRule``):
    #: at least ``gpu_share_min``, in steps of ``gpu_share_step``, below one whole GPU.
    #: Both are whole milli values; a step of 0.001 allows any milli value.
    gpu_share_min: float = Field(default=0.05, ge=0.001, le=0.999)
    gpu_share_step: float = Field(default=0.05, ge=0.001, le=0.999)
    run_loops: bool = True

    # Container runtimes (docker servers through their agents).
    #: How often the starter loop looks for scheduled replicas without a container (it is
    #: also woken after every admission).
    starter_interval_s: float = Field(default=2.0, gt=0)
    health_interval_s: float = Field(default=10.0, gt=0)
    #: Consecutive missed probes after which a server is offline and its work re-queued.
    health_offline_after_misses: int = Field(default=3, ge=1)
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    #: Kubernetes clusters (runtimes/kubernetes/): how often the kube-nodes loop lists
    #: each cluster's nodes into servers, and the namespace of the pods of workloads
    #: without a team (a DNS-1123 label; a team's pods go to its own namespace).
    kube_sync_interval_s: float = Field(default=5.0, gt=0)
    kube_default_namespace: str = Field(
        default="gpuyard", min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    cleanup_interval_s: float = Field(default=5.0, gt=0)
    #: Host cleanup (services/fleet/host_cleanup.py): how often the host-cleanup loop
    #: cleans every docker server (0, the default: never; on demand only), and how long a
    #: stopped container or an unused files directory is kept before it goes.
    host_cleanup_interval_s: float = Field(default=0.0, ge=0, le=30 * 86400)
    host_cleanup_retention_s: float = Field(default=86400.0, ge=0, le=10 * 365 * 86400)
    # Per-user routing (services/routing, issue 19): each running workload's ports at
    # /u/<user>/<workload id>/<port>/ through nginx. Off unless the config path is set.
    #: The file gpuyard writes for nginx's http context (for example
    #: /etc/nginx/conf.d/gpuyard-routes.conf); None: no routing.
    routing_nginx_conf: Path | None = None
    #: The base URL users open routes at (scheme, host, optional port), shown in the API,
    #: CLI and dashboard. Prefer a host of its own (docs/operations.md: same-origin risk).
    #: None: the routes' paths are shown without a host.
    routing_public_url: str | None = Field(default=None, max_length=512)
    #: The dashboard's own URL (scheme, host, optional port) as browsers open it. With a
    #: routing URL on another host name, nginx sends a visitor without credentials to
    #: the dashboard's login, which comes back with a cookie for the routing host
    #: (services/routing/login.py). None: no login flow, such visitors get a 401.
    routing_dashboard_url: str | None = Field(default=None, max_length=512)
    #: Where the routing server block listens (nginx's ``listen``: ``host:port``).
    routing_listen: str = Field(default="127.0.0.1:8081", pattern=r"^[A-Za-z0-9.\[\]:-]{1,100}$")
    #: gpuyard's API as nginx reaches it, for the auth_request subrequests.
    routing_authorize_url: str = Field(
        default="http://127.0.0.1:8080", pattern=r"^https?://[A-Za-z0-9.\[\]:-]{1,200}/?$"
    )
    #: nginx's master PID file (a changed config is loaded with a HUP to that PID).
    routing_nginx_pid_file: Path = Path("/run/nginx.pid")
    routing_nginx_binary: str = "nginx"
    #: How often the routing loop compares the running workloads' ports with the config.
    routing_interval_s: float = Field(default=5.0, gt=0, le=3600)
    #: Warm pools (services/pools): how often each pool is refilled to its target size and
    #: its containers' labels are brought in line with who holds them.
    pool_interval_s: float = Field(default=5.0, gt=0)
    # Idle culling and maximum lifetime (services/culling, issue 19). The global default
    # policy: teams and image types refine it through the API; "off" anywhere wins.
    #: "on": idle workloads are culled unless a team or image type opts out; "off": only
    #: where a team or image type turns it on.
    idle_cull_mode: Literal["on", "off"] = "off"
    #: A workload whose utilisation (its GPUs', else its CPU share) stays below this
    #: percentage for the window is warned, then stopped.
    idle_cull_threshold_pct: float = Field(default=5.0, ge=0, le=100)
    idle_cull_window_s: int = Field(default=7200, ge=60, le=30 * 86400)
    #: How long before a stop (idle or lifetime) its warning comes (at most half the limit).
    idle_cull_warn_s: int = Field(default=900, ge=0, le=86400)
    #: How often the culling loop looks at every running workload.
    culling_interval_s: float = Field(default=60.0, gt=0)
    # Utilisation/allocation history (services/usage): one raw sample per server, GPU and
    # the fleet every interval; 1-minute and 15-minute rollups (mean and highest), each
    # level pruned past its retention. Rollups are computed from raw samples, so raw ones
    # are kept at least 30 minutes.
    history_sample_interval_s: int = Field(default=10, ge=1, le=60)
    #: Each level is kept at least as long as the longest window read from it
    #: (``_serves_its_windows``): raw 1 h, minutes 1 day, quarters 30 days.
    history_raw_retention_s: int = Field(default=3600, le=7 * 86400)
    history_minute_retention_s: int = Field(default=86400, le=30 * 86400)
    history_quarter_retention_s: int = Field(default=30 * 86400, le=366 * 86400)
    #: Time-based fair share (scheduler/usage_decay.py): each team's allocation is
    #: integrated with an exponential decay of this half-life by the history loop and
    #: mixed into the queue's DRF order (Slurm's 2^(-usage/share) factor). None (the
    #: default): off, the order is plain DRF. One minute to one year.
    fairshare_half_life_s: float | None = Field(default=None, ge=60, le=366 * 86400)
    #: gpuyard-labelled containers with no reservation are removed after this long.
    orphan_grace_s: float = Field(default=60.0, ge=0)
    #: Host port ranges for published container ports, by image type (a word of the image
    #: name); "*" is everything else. A server's own range (host_ports) overrides these.
    port_ranges: str = (
        "nginx=8000-8099,apache=8100-8199,httpd=8100-8199,python=8200-8299,"
        "node=8300-8399,ssh=2200-2210,*=9000-9999"
    )
    #: Largest file the control plane relays to an agent in one upload.
    max_upload_mib: int = Field(default=1024, gt=0)
    #: Largest build context (a tar) the control plane relays to an agent for a build.
    max_build_context_mib: int = Field(default=512, gt=0)
    #: Largest request body of any other route (api/body_limits.py).
    max_body_kib: int = Field(default=1024, ge=1, le=1024 * 1024)
    #: A request body that stops arriving for this long is abandoned with a 408.
    body_idle_timeout_s: float = Field(default=30.0, gt=0)
    #: ... and one not all there this long after it began (uploads: no such deadline).
    body_timeout_s: float = Field(default=60.0, gt=0)
    #: Offer this machine's Docker as the `local` server: on, off, or auto (on when the
    #: socket exists and answers).
    local_docker: Literal["auto", "on", "off"] = "auto"
    docker_socket: Path = Path("/var/run/docker.sock")

    #: A bearer token Prometheus scrapers may present to GET /metrics instead of a user's
    #: credentials (compared in constant time; never logged). None: only admins and
    #: operators (``metrics.read``) read /metrics.
    metrics_token: SecretStr | None = None
    #: Whether this process's GET /metrics includes the fleet's and the queue's gauges
    #: (read from the database at each scrape, the same in every process): turn it off
    #: on all processes but one when several are scraped (docs/operations.md).
    metrics_fleet: bool = True
    #: `gpuyard worker` serves GET /metrics on this port (127.0.0.1, or ``host``) so its
    #: loops' counters can be scraped; None: no metrics listener in the worker.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("routing_public_url")
    @classmethod
    def _check_routing_public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or not _PLAIN_URL.fullmatch(value)
        ):
            raise ValueError("GPUYARD_ROUTING_PUBLIC_URL must be http(s)://host[:port][/path]")
        return value.rstrip("/")

    @field_validator("routing_dashboard_url")
    @classmethod
    def _check_routing_dashboard_url(cls, value: str | None) -> str | None:
        # Written into nginx's config: only plain URL characters, no path.
        if not value:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path.strip("/")
            or parts.query
            or parts.fragment
            or not _PLAIN_URL.fullmatch(value)
        ):
            raise ValueError("GPUYARD_ROUTING_DASHBOARD_URL must be http(s)://host[:port]")
        return value.rstrip("/")

    @field_validator("metrics_token")
    @classmethod
    def _reject_weak_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if secret.strip().lower() in _UNSAFE_SECRETS or len(secret) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"GPUYARD_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters "
                "and not a placeholder; generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        # Accept the URLs people paste from other tools and point them at psycopg 3.
        if value and value.startswith(("postgres://", "postgresql://")):
            _scheme, rest = value.split("://", 1)
            return f"postgresql+psycopg://{rest}"
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("GPUYARD_REDIS_URL must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)
        return value

    @field_validator("admin_email")
    @classmethod
    def _check_admin_email(cls, value: str) -> str:
        try:
            return normalise_email(value)
        except InvalidEmail as exc:
            raise ValueError(f"GPUYARD_ADMIN_EMAIL: {exc}") from exc

    @field_validator("port_ranges")
    @classmethod
    def _check_port_ranges(cls, value: str) -> str:
        parse_port_ranges(value)
        return value

    @field_validator("history_sample_interval_s")
    @classmethod
    def _whole_slots_per_minute(cls, value: int) -> int:
        if 60 % value:
            raise ValueError("GPUYARD_HISTORY_SAMPLE_INTERVAL_S must divide 60 (1-minute rollups)")
        return value

    @field_validator(
        "history_raw_retention_s", "history_minute_retention_s", "history_quarter_retention_s"
    )
    @classmethod
    def _serves_its_windows(cls, value: int, info: ValidationInfo) -> int:
        name = str(info.field_name)
        least = longest_window_served(_HISTORY_LEVELS[name])
        if value < least:
            raise ValueError(
                f"GPUYARD_{name.upper()} must be at least {least} (the longest history "
                "window read from that level)"
            )
        return value

    @model_validator(mode="after")
    def _reject_unsafe_secrets(self) -> Settings:
        if self.secret_key is not None and self.secret_key.strip().lower() in _UNSAFE_SECRETS:
            raise ValueError("GPUYARD_SECRET_KEY is a well-known placeholder; set a real one")
        if self.admin_password is not None and len(self.admin_password) < 8:
            raise ValueError("GPUYARD_ADMIN_PASSWORD must be at least 8 characters")
        return self

    def max_priority_of(self, role: str) -> int:
        """The highest priority ``role`` (admin, operator, user) may ask for."""
        limits = {
            "admin": self.max_priority_admin,
            "operator": self.max_priority_operator,
            "user": self.max_priority_user,
        }
        return limits.get(role, self.max_priority_user)

    @field_validator("gpu_share_min", "gpu_share_step")
    @classmethod
    def _whole_milli(cls, value: float) -> float:
        if abs(value * 1000 - round(value * 1000)) > 1e-6:
            raise ValueError("must be a whole number of milli GPUs (a multiple of 0.001)")
        return value

    @model_validator(mode="after")
    def _some_gpu_share_allowed(self) -> Settings:
        """Refuse at start-up, not at the first request, a rule that allows no share."""
        _ = self.gpu_shares  # GpuShareRule raises ValueError for such a rule
        return self

    @property
    def gpu_shares(self) -> GpuShareRule:
        """The GPU share rule every request is validated against."""
        return GpuShareRule(round(self.gpu_share_min * 1000), round(self.gpu_share_step * 1000))

    @property
    def port_range_table(self) -> dict[str, tuple[int, int]]:
        return parse_port_ranges(self.port_ranges)

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_trusted_proxies(self.trusted_proxies)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gpuyard.db"

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def previous_secret_key_list(self) -> list[str]:
        return [k.strip() for k in (self.previous_secret_keys or "").split(",") if k.strip()]

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path.resolve()}"


@cache
def parse_trusted_proxies(text: str) -> tuple[IPNetwork, ...]:
    """ "10.0.0.5, 172.16.0.0/12, ::1" -> the networks (a lone address is a /32 or /128);
    ValueError naming the entry that is neither an address nor a CIDR network."""
    networks: list[IPNetwork] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"GPUYARD_TRUSTED_PROXIES: {item!r} is neither an IP address nor a CIDR "
                "network (e.g. 10.0.0.5 or 172.16.0.0/12)"
            ) from None
    return tuple(networks)


def parse_port_range(text: str) -> tuple[int, int]:
    """ "8000-8099" -> (8000, 8099); ValueError when it is not a valid range."""
    low, dash, high = text.strip().partition("-")
    first, last = int(low), int(high if dash else low)
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"port range {text!r} must be FIRST-LAST within 1-65535")
    return first, last


def parse_port_ranges(text: str) -> dict[str, tuple[int, int]]:
    """ "nginx=8000-8099,*=9000-9999" -> {"nginx": (8000, 8099), "*": (9000, 9999)}."""
    table: dict[str, tuple[int, int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, equals, ports = item.partition("=")
        if not equals or not kind.strip():
            raise ValueError(f"port range {item!r} must read TYPE=FIRST-LAST")
        table[kind.strip().lower()] = parse_port_range(ports)
    if "*" not in table:
        raise ValueError("port ranges need a '*' range for other images")
    return table
