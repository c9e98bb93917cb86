"""Names gpuyard gives Kubernetes objects: DNS-1123 labels made from its own names.

A team's namespace is its name made a DNS-1123 label (lower case, ``a-z0-9-``, starting
and ending with a letter or digit, 63 characters at most): team "prod-team" ->
"prod-team", "Research Lab" -> "research-lab". Two names that differ only in what a
label cannot hold share a namespace; gpuyard's own label on every pod keeps them apart.
"""

from __future__ import annotations

import re

#: The longest DNS-1123 label.
MAX_LABEL = 63
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def dns_label(text: str) -> str:
    """``text`` made a DNS-1123 label ("" when nothing of it can be one)."""
    label = _NOT_LABEL.sub("-", text.lower())
    label = re.sub(r"-{2,}", "-", label).strip("-")
    return label[:MAX_LABEL].rstrip("-")


def is_dns_label(text: str) -> bool:
    """Whether ``text`` is a DNS-1123 label as it stands."""
    return bool(_LABEL.match(text))


def team_namespace(team_name: str | None) -> str:
    """The namespace of a team's pods; "" (the runtime's default namespace) for none."""
    return dns_label(team_name) if team_name else ""


def pod_name(workload_id: str, replica: int) -> str:
    """The pod of one replica (a workload id is 32 hex digits: the name fits)."""
    return dns_label(f"gpuyard-{workload_id}-{replica}")
