"""The read model of an audit event: one link of the hash-chained audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: The action of a successful login (recorded by the login, read by the users' list).
LOGIN_ACTION = "auth.login"


@dataclass(frozen=True)
class AuditEvent:
    id: int
    #: UTC-aware.
    at: datetime
    actor_id: str | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilter:
    """Which events to list; None matches any."""

    actor: str | None = None  # a user id or an email
    action: str | None = None  # exact, or a prefix ending in '.' ("workload.")
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class ChainReport:
    """What a walk of the hash chain found."""

    #: Events that verified, from the first on.
    checked: int
    #: Id of the first row that does not verify, None when the chain is intact.
    first_bad_id: int | None = None
    problem: str | None = None
    #: The last event's hash when the whole chain verified: kept elsewhere, it anchors
    #: the chain against a later rewrite (None for an empty or broken chain).
    head_hash: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_id is None
