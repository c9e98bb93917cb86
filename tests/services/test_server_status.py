"""Server status changes: checked against the domain's table, each one an event with a
reason, whether the health loop or an administrator made it."""

from __future__ import annotations

import pytest
from factories.app import admin_caller

from gpuyard.domain.errors import InvalidTransition
from gpuyard.domain.runtime_records import HostInventory
from gpuyard.domain.server_state import (
    ALLOWED_SERVER_TRANSITIONS,
    SETTABLE_SERVER_STATUSES,
    ServerStatus,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.health import apply_probe
from gpuyard.services.fleet.server_status import change_server_status, list_server_events
from gpuyard.services.fleet.servers import list_servers, update_server
from gpuyard.services.identity.audit import SYSTEM_ACTOR
from gpuyard.store.fleet_tables import ServerEventRow, ServerRow

_ANSWER = HostInventory(reported_name="a", cpu_count=1, ram_mib=1, storage_mib=1)


def _a_server(ctx: ServiceContext) -> str:
    rows, _ = list_servers(ctx, None, None, 1, 0)
    return rows[0].id


def _story(ctx: ServiceContext, server_id: str) -> list[tuple[str | None, str, str | None]]:
    events, count = list_server_events(ctx, server_id, 100, 0)
    assert count == len(events)
    return [(e.from_status, e.to_status, e.reason) for e in events]


def test_the_health_loop_records_offline_and_online_with_reasons(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    server_id = _a_server(ctx)
    misses = ctx.settings.health_offline_after_misses
    for _ in range(misses):
        apply_probe(ctx, server_id, None)
    apply_probe(ctx, server_id, None)  # already offline: no second event
    apply_probe(ctx, server_id, _ANSWER)
    assert _story(ctx, server_id) == [
        ("online", "offline", f"{misses} missed probes"),
        ("offline", "online", "answered its probe"),
    ]
    with ctx.db.read() as session:
        offline = session.query(ServerEventRow).filter_by(to_status="offline").one()
        assert offline.actor_id is None  # the system
        assert offline.details == {"missed_probes": misses}


def test_an_admin_change_is_an_event_with_its_reason_and_actor(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    server_id = _a_server(ctx)
    admin = admin_caller(ctx)
    update_server(ctx, admin, server_id, ServerStatus.DRAINING, None)
    update_server(ctx, admin, server_id, ServerStatus.DRAINING, None)  # no change, no event
    update_server(ctx, admin, server_id, None, {"zone": "b"})  # labels only: no event
    assert _story(ctx, server_id) == [("online", "draining", "set to draining by an administrator")]
    with ctx.db.read() as session:
        assert session.query(ServerEventRow).one().actor_id == admin.user_id


def test_a_transition_outside_the_table_is_refused_naming_status(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    server_id = _a_server(ctx)
    update_server(ctx, admin_caller(ctx), server_id, ServerStatus.MAINTENANCE, None)
    with ctx.db.write() as session:
        server = session.get(ServerRow, server_id)
        assert server is not None
        with pytest.raises(InvalidTransition) as refused:
            change_server_status(
                session, server, ServerStatus.OFFLINE, "probe", SYSTEM_ACTOR, ctx.now()
            )
    assert [e.field for e in refused.value.errors] == ["status"]
    assert refused.value.status == 409
    with ctx.db.read() as session:
        server = session.get(ServerRow, server_id)
        assert server is not None
        assert server.status == "maintenance"
    assert len(_story(ctx, server_id)) == 1  # only the change to maintenance


def test_the_table_lets_an_admin_set_every_settable_status_from_every_other() -> None:
    # Behaviour kept: PATCH could always set online, draining or maintenance.
    for current, allowed in ALLOWED_SERVER_TRANSITIONS.items():
        assert SETTABLE_SERVER_STATUSES - {current} <= allowed, current
    assert ServerStatus.OFFLINE not in ALLOWED_SERVER_TRANSITIONS[ServerStatus.MAINTENANCE]
