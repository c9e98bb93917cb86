"""Every bound on caller input, in one place: the schemas declare them (so the OpenAPI
document states them), services and the scheduler rely on them, and docs/security.md
lists them. Each is large enough for any real use and small enough that no value can
overflow a column, a timedelta or a loop, or make one request cost others memory.

Resource maxima (cores, GB, GPUs) live beside their units in domain/resources.py.
"""

from __future__ import annotations

# Lists (?limit=&offset=).
MAX_LIST_LIMIT = 1000
MAX_LIST_OFFSET = 1_000_000_000

# Workloads.
#: Simulated runtime of a workload: a year and a day.
MAX_DURATION_S = 366 * 24 * 3600
MAX_REPLICAS = 1024
MAX_NAME_LENGTH = 128
MAX_IMAGE_LENGTH = 512
MAX_PORTS = 32
MAX_COMMAND_ARGS = 256
MAX_COMMAND_ARG_LENGTH = 8192
MAX_ENV_ENTRIES = 128
MAX_ENV_NAME_LENGTH = 256
MAX_ENV_VALUE_LENGTH = 16384
#: An environment variable's name: portable to Docker and Kubernetes alike.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"

# Server labels and the node selectors that match them (Kubernetes' label syntax: an
# optional DNS-subdomain prefix and a slash, then a name of up to 63 characters).
MAX_LABELS = 64
MAX_LABEL_KEY_LENGTH = 317
MAX_LABEL_VALUE_LENGTH = 63
LABEL_KEY_PATTERN = (
    r"^([a-zA-Z0-9]([-a-zA-Z0-9.]{0,251}[a-zA-Z0-9])?/)?"
    r"[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^([a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?)?$"

# Clusters and servers.
#: An agent's address: http(s), a host name or an address (IPv6 in brackets), a port and
#: an optional path of printable ASCII.
AGENT_URL_PATTERN = r"^https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!-~]*)?$"
#: A secret someone else issued (an agent's token): printable ASCII, no spaces.
PRINTABLE_ASCII_PATTERN = r"^[!-~]+$"
MAX_KUBECONFIG_LENGTH = 256 * 1024
MAX_GPUS_PER_SERVER = 64
MAX_GPU_MEMORY_GB = 4096

# Team quotas: a fleet's worth (the quota columns hold milli-units and MiB).
MAX_QUOTA_CPU_CORES = 1_000_000
MAX_QUOTA_RAM_GB = 100_000_000
MAX_QUOTA_GPUS = 1_000_000
#: The largest over-quota weight of a team (its claim on idle capacity among siblings).
MAX_QUOTA_WEIGHT = 1000

# Identity.
MAX_TEAM_MEMBERS = 10_000
MAX_TOKEN_DAYS = 3650
MAX_INVITE_HOURS = 24 * 90
