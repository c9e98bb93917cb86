"""Server statuses, which of them accept new work, and which changes are allowed.

``online`` servers take new work; an admin ``draining`` one finishes what it runs, one in
``maintenance`` is left alone (the health loop never marks it offline); ``offline`` is
observed by the health loop (missed probes), never set by hand, and ends when the server
answers again. Every status change goes through :func:`check_server_transition`.
"""

from __future__ import annotations

from enum import StrEnum

from gpuyard.domain.errors import FieldError, InvalidTransition


class ServerStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"


#: Statuses an admin may set through the API (offline is observed, never set by hand).
SETTABLE_SERVER_STATUSES: frozenset[ServerStatus] = frozenset(
    {ServerStatus.ONLINE, ServerStatus.DRAINING, ServerStatus.MAINTENANCE}
)


_S = ServerStatus

ALLOWED_SERVER_TRANSITIONS: dict[ServerStatus, frozenset[ServerStatus]] = {
    _S.ONLINE: frozenset({_S.DRAINING, _S.MAINTENANCE, _S.OFFLINE}),
    _S.DRAINING: frozenset({_S.ONLINE, _S.MAINTENANCE, _S.OFFLINE}),
    # Never offline: a server in maintenance is expected not to answer its probes.
    _S.MAINTENANCE: frozenset({_S.ONLINE, _S.DRAINING}),
    # Back online when it answers; an admin may also drain it or put it in maintenance.
    _S.OFFLINE: frozenset({_S.ONLINE, _S.DRAINING, _S.MAINTENANCE}),
}


def can_server_transition(current: ServerStatus, target: ServerStatus) -> bool:
    return target in ALLOWED_SERVER_TRANSITIONS[current]


def check_server_transition(current: ServerStatus, target: ServerStatus) -> None:
    """Raise InvalidTransition (naming the ``status`` field) unless ``current -> target``
    is allowed."""
    if not can_server_transition(current, target):
        message = f"a {current.value} server cannot become {target.value}"
        raise InvalidTransition(message, [FieldError("status", message)])


def accepts_new_work(status: ServerStatus) -> bool:
    return status is ServerStatus.ONLINE


class ClusterKind(StrEnum):
    DOCKER = "docker"
    KUBERNETES = "kubernetes"
    SIMULATED = "simulated"
