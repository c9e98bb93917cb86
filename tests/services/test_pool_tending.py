"""Warm pools on the simulated demo cluster, SQLite and PostgreSQL: a launch gets what
the warm container runs (not what its pool says now), claims and the pool loop respect
server status, refills back off after failures, pool env stays masked, and deleting a
server or cluster takes its pools' warm containers along."""

from __future__ import annotations

from datetime import UTC, datetime

from factories.app import add_user, admin_caller, settle
from factories.clock import ManualClock
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.pools import (
    MAX_REFILL_BACKOFF_S,
    REFILL_BACKOFF_S,
    PoolFailures,
    PoolState,
)
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.domain.workload_state import ACTIVE
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.cluster_changes import delete_cluster
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.servers import delete_server, update_server
from gpuyard.services.identity.access import ENV_MASK, visible_env
from gpuyard.services.loops.item_failures import fail_workload
from gpuyard.services.pools.specs import (
    PoolChanges,
    PoolDefinition,
    create_pool,
    get_pool,
    update_pool,
)
from gpuyard.services.pools.tending import tend_pools
from gpuyard.services.workloads.submission import create_workload, get_workload
from gpuyard.store.fleet_tables import ClusterRow, ServerRow
from gpuyard.store.pool_tables import PoolRow
from gpuyard.store.workload_tables import WorkloadRow

IMAGE = "nginx:1.27"
NEW_IMAGE = "nginx:1.28"
WARM = 3
_ACTIVE = [s.value for s in ACTIVE]


def _cluster_id(ctx: ServiceContext) -> str:
    with ctx.db.read() as session:
        cluster_id = session.scalar(select(ClusterRow.id))
    assert cluster_id is not None
    return cluster_id


def _pool(ctx: ServiceContext, **kw: object) -> str:
    values: dict[str, object] = {
        "name": "warm",
        "image_type": "nginx",
        "image": IMAGE,
        "server_id": None,
        "cluster_id": _cluster_id(ctx),
        "target_size": WARM,
        "port_min": 30000,
        "port_max": 30099,
        "container_port": None,
        "cpu": 0.5,
        "ram_gb": 0.5,
        "storage_gb": 0,
        **kw,
    }
    pool_id = create_pool(ctx, admin_caller(ctx), PoolDefinition(**values)).spec.id  # type: ignore[arg-type]
    tend_pools(ctx)
    settle(ctx)
    assert get_pool(ctx, pool_id).available == WARM
    return pool_id


def _user(ctx: ServiceContext, email: str = "launch@example.com") -> Caller:
    return Caller(add_user(ctx, email, "pw-launch-123456"), email, Role.USER)


def _available_rows(ctx: ServiceContext, pool_id: str) -> list[WorkloadRow]:
    with ctx.db.read() as session:
        return list(
            session.scalars(
                select(WorkloadRow).where(
                    WorkloadRow.pool_id == pool_id,
                    WorkloadRow.pool_state == PoolState.AVAILABLE.value,
                    WorkloadRow.status.in_(_ACTIVE),
                )
            )
        )


def test_a_launch_never_gets_a_warm_container_of_an_older_image(clock_ctx: ServiceContext) -> None:
    """The pool's image changed under running warm containers (as a PATCH did before it
    replaced them): a launch of the new image starts cold rather than getting the old
    image, and a launch of the old image gets exactly what it asked for."""
    ctx = clock_ctx
    pool_id = _pool(ctx)
    with ctx.db.write() as session:
        session.execute(update(PoolRow).where(PoolRow.id == pool_id).values(image=NEW_IMAGE))
    caller = _user(ctx)
    fresh = create_workload(ctx, caller, WorkloadCreate(image=NEW_IMAGE, cpu=0.5, ram_gb=0.5))
    assert fresh.from_pool is False
    assert fresh.image == NEW_IMAGE
    old = create_workload(ctx, caller, WorkloadCreate(image=IMAGE, cpu=0.5, ram_gb=0.5))
    assert old.from_pool is True
    assert old.image == IMAGE


def test_a_patch_of_the_image_replaces_the_available_warm_containers(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    pool_id = _pool(ctx)
    before = {row.id for row in _available_rows(ctx, pool_id)}
    update_pool(ctx, admin_caller(ctx), pool_id, PoolChanges(image=NEW_IMAGE))
    assert not before & {row.id for row in _available_rows(ctx, pool_id)}  # stopped
    tend_pools(ctx)
    settle(ctx)
    rows = _available_rows(ctx, pool_id)
    assert len(rows) == WARM
    assert {row.image for row in rows} == {NEW_IMAGE}
    claimed = create_workload(ctx, _user(ctx), WorkloadCreate(image=NEW_IMAGE, cpu=0.5, ram_gb=0.5))
    assert claimed.from_pool is True
    assert claimed.image == NEW_IMAGE


def _drain_all(ctx: ServiceContext) -> None:
    caller = admin_caller(ctx)
    with ctx.db.read() as session:
        ids = list(session.scalars(select(ServerRow.id)))
    for server_id in ids:
        update_server(ctx, caller, server_id, ServerStatus.DRAINING, None)


def test_a_draining_server_hands_out_no_warm_container_and_the_loop_empties_it(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    pool_id = _pool(ctx)
    before = {row.id for row in _available_rows(ctx, pool_id)}
    _drain_all(ctx)
    launched = create_workload(ctx, _user(ctx), WorkloadCreate(image=IMAGE, cpu=0.5, ram_gb=0.5))
    assert launched.from_pool is False
    tend_pools(ctx)
    settle(ctx)
    rows = _available_rows(ctx, pool_id)
    assert not before & {row.id for row in rows}  # the warm ones on draining servers stop
    assert len(rows) == WARM  # replaced, waiting for a server that takes work
    assert {row.status for row in rows} == {"pending"}
    with ctx.db.read() as session:
        for workload_id in before:
            row = session.get(WorkloadRow, workload_id)
            assert row is not None
            assert row.status == "stopped"
            assert row.allocations == []
    tend_pools(ctx)  # nothing more: pending replacements count
    assert {row.id for row in _available_rows(ctx, pool_id)} == {row.id for row in rows}


def test_refills_back_off_after_failures_and_the_status_says_so(clock_ctx: ServiceContext) -> None:
    """Every warm container failed (as a name clash or a bad image makes the starter
    do): the loop does not insert replacements every tick but waits, longer per failure
    in a row, and the pool's status names the failure; a start ends the streak."""
    ctx = clock_ctx
    clock = ctx.clock
    assert isinstance(clock, ManualClock)
    pool_id = _pool(ctx)
    for row in _available_rows(ctx, pool_id):
        assert fail_workload(ctx, row.id, "container start failed: Conflict", loop="test")
    status = get_pool(ctx, pool_id)
    assert status.failures is not None
    assert status.failures.count == WARM
    assert status.failures.last_reason == "container start failed: Conflict"
    assert status.failures.first_at == clock.now
    delay = status.failures.refill_delay_s()
    assert delay == REFILL_BACKOFF_S * 2 ** (WARM - 1)
    for _tick in range(3):
        tend_pools(ctx)
        clock.advance(delay / 4)
    assert _available_rows(ctx, pool_id) == []  # waited
    clock.advance(delay / 4)
    tend_pools(ctx)
    settle(ctx)
    assert len(_available_rows(ctx, pool_id)) == WARM
    assert get_pool(ctx, pool_id).failures is None  # they started: the streak is over


@given(st.integers(1, 10_000))
def test_the_refill_backoff_grows_with_failures_and_is_bounded(count: int) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    failures = PoolFailures(count, moment, moment, None)
    more = PoolFailures(count + 1, moment, moment, None)
    assert REFILL_BACKOFF_S <= failures.refill_delay_s() <= MAX_REFILL_BACKOFF_S
    assert failures.refill_delay_s() <= more.refill_delay_s()


def test_pool_env_values_stay_masked_to_all_but_the_owner(clock_ctx: ServiceContext) -> None:
    ctx = clock_ctx
    env = {"TOKEN": "s3cret"}
    pool_id = _pool(ctx, env=env)
    admin = admin_caller(ctx)
    warm = _available_rows(ctx, pool_id)[0]
    assert visible_env(admin, get_workload(ctx, admin, warm.id)) == {"TOKEN": ENV_MASK}
    caller = _user(ctx)
    claimed = create_workload(
        ctx, caller, WorkloadCreate(image=IMAGE, cpu=0.5, ram_gb=0.5, env=env)
    )
    assert claimed.from_pool is True
    assert claimed.plain_env_keys == ()
    assert visible_env(caller, claimed) == env  # its owner reads the values
    assert visible_env(admin, get_workload(ctx, admin, claimed.id)) == {"TOKEN": ENV_MASK}


def _orphans(ctx: ServiceContext) -> list[str]:
    """Unfinished available warm containers with no pool."""
    with ctx.db.read() as session:
        return list(
            session.scalars(
                select(WorkloadRow.id).where(
                    WorkloadRow.pool_id.is_(None),
                    WorkloadRow.pool_state == PoolState.AVAILABLE.value,
                    WorkloadRow.status.in_(_ACTIVE),
                )
            )
        )


def test_deleting_a_server_stops_its_pools_waiting_warm_containers(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    with ctx.db.read() as session:
        server_id = session.scalars(select(ServerRow.id).order_by(ServerRow.name)).first()
    assert server_id is not None
    caller = admin_caller(ctx)
    update_server(ctx, caller, server_id, ServerStatus.MAINTENANCE, None)
    pool_id = create_pool(
        ctx,
        caller,
        PoolDefinition(
            name="pinned",
            image_type="nginx",
            image=IMAGE,
            server_id=server_id,
            cluster_id=None,
            target_size=WARM,
            port_min=30000,
            port_max=30099,
            container_port=None,
            cpu=0.5,
            ram_gb=0.5,
            storage_gb=0,
        ),
    ).spec.id
    tend_pools(ctx)
    settle(ctx)
    waiting = [row.id for row in _available_rows(ctx, pool_id)]
    assert len(waiting) == WARM  # pending: the server takes no work
    delete_server(ctx, caller, server_id)
    assert _orphans(ctx) == []
    with ctx.db.read() as session:
        assert {session.get(WorkloadRow, w).status for w in waiting} == {"stopped"}  # type: ignore[union-attr]


def test_deleting_a_cluster_takes_its_pool_along_without_a_fight(
    clock_ctx: ServiceContext,
) -> None:
    """A pool of a cluster with no servers: its warm containers wait (pending, naming the
    cluster). The delete stops them and goes through; the loop refills nothing."""
    ctx = clock_ctx
    caller = admin_caller(ctx)
    empty = create_cluster(ctx, caller, "empty", ClusterKind.SIMULATED)
    pool_id = create_pool(
        ctx,
        caller,
        PoolDefinition(
            name="nowhere",
            image_type="nginx",
            image=IMAGE,
            server_id=None,
            cluster_id=empty.id,
            target_size=WARM,
            port_min=30000,
            port_max=30099,
            container_port=None,
            cpu=0.5,
            ram_gb=0.5,
            storage_gb=0,
        ),
    ).spec.id
    tend_pools(ctx)
    assert len(_available_rows(ctx, pool_id)) == WARM
    delete_cluster(ctx, caller, empty.id)
    tend_pools(ctx)
    assert _orphans(ctx) == []
    with ctx.db.read() as session:
        assert session.get(PoolRow, pool_id) is None
        assert (
            session.scalars(
                select(WorkloadRow.id).where(
                    WorkloadRow.status.in_(_ACTIVE), WorkloadRow.cluster_id == empty.id
                )
            ).all()
            == []
        )


def test_the_loop_stops_available_warm_containers_whose_pool_is_gone(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    pool_id = _pool(ctx)
    orphan = _available_rows(ctx, pool_id)[0].id
    with ctx.db.write() as session:  # as a delete of an older version left it
        session.execute(update(WorkloadRow).where(WorkloadRow.id == orphan).values(pool_id=None))
    assert _orphans(ctx) == [orphan]
    tend_pools(ctx)
    assert _orphans(ctx) == []
    with ctx.db.read() as session:
        row = session.get(WorkloadRow, orphan)
        assert row is not None
        assert row.status == "stopped"
        assert row.allocations == []


def test_a_claimed_container_that_fails_is_its_users_not_the_pools(
    clock_ctx: ServiceContext,
) -> None:
    ctx = clock_ctx
    pool_id = _pool(ctx)
    claimed = create_workload(ctx, _user(ctx), WorkloadCreate(image=IMAGE, cpu=0.5, ram_gb=0.5))
    assert claimed.from_pool is True
    assert fail_workload(ctx, claimed.id, "exited with status 1", loop="test")
    assert get_pool(ctx, pool_id).failures is None
    tend_pools(ctx)  # its place refills at once
    assert len(_available_rows(ctx, pool_id)) == WARM
