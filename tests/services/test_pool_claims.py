"""Claim atomicity (store.pools.claim_warm, services/pools/claim.py) on SQLite and
PostgreSQL: whatever order launches read candidates and claim them in, no warm container
is handed out twice, and every claim that loses a race leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from factories.app import add_user, admin_caller, make_context, make_settings, settle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.domain.pools import POOL_OWNER_ID, POOL_PRIORITY, PoolState
from gpuyard.domain.resources import Resources
from gpuyard.services.context import ServiceContext
from gpuyard.services.pools.specs import PoolDefinition, create_pool
from gpuyard.services.pools.tending import tend_pools
from gpuyard.services.workloads.submission import create_workload
from gpuyard.store import pools as pool_store
from gpuyard.store.fleet_tables import ClusterRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.workload_tables import WorkloadRow

IMAGE = "nginx:1.27"
WARM = 4
REQUEST = Resources.from_api(0.5, 0.5, 0, 0)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ],
)
def pool_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """The demo cluster with a pool of WARM running warm containers (one per test: each
    hypothesis example hands them back before it starts)."""
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    ctx = make_context(make_settings(tmp_path / "data", url))
    with ctx.db.read() as session:
        cluster_id = session.scalar(select(ClusterRow.id))
    definition = PoolDefinition(
        name="claims",
        image_type="nginx",
        image=IMAGE,
        server_id=None,
        cluster_id=cluster_id,
        target_size=WARM,
        port_min=30000,
        port_max=30099,
        container_port=None,
        cpu=0.5,
        ram_gb=0.5,
        storage_gb=0,
    )
    create_pool(ctx, admin_caller(ctx), definition)
    tend_pools(ctx)
    settle(ctx)
    yield ctx
    ctx.db.dispose()


def _hand_back(ctx: ServiceContext) -> None:
    with ctx.db.write() as session:
        session.execute(
            update(WorkloadRow)
            .where(WorkloadRow.pool_id.is_not(None))
            .values(
                pool_state=PoolState.AVAILABLE.value,
                owner_id=POOL_OWNER_ID,
                priority=POOL_PRIORITY,
                from_pool=False,
            )
        )


def _claims(ctx: ServiceContext) -> dict[str, str]:
    """warm workload id -> its owner, for the assigned ones."""
    with ctx.db.read() as session:
        rows = session.execute(
            select(WorkloadRow.id, WorkloadRow.owner_id).where(
                WorkloadRow.pool_state == PoolState.ASSIGNED.value
            )
        ).all()
    return {row.id: row.owner_id for row in rows}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.sampled_from(["read", "claim"])),
        min_size=1,
        max_size=30,
    )
)
def test_interleaved_reads_and_claims_never_hand_a_container_out_twice(
    pool_ctx: ServiceContext, steps: list[tuple[int, str]]
) -> None:
    """Up to 8 launches, each in its own transaction, read candidates (perhaps long
    before) and claim (the first candidate they read) in any interleaving: each claim
    succeeds only if its container was still available, and no container ends up with
    two owners."""
    ctx = pool_ctx
    _hand_back(ctx)
    launchers = _launchers(ctx)
    seen: dict[int, list[pool_store.WarmCandidate]] = {}
    won: dict[str, str] = {}
    for launch, action in steps:
        if action == "read" or launch not in seen:
            with ctx.db.read() as session:
                seen[launch] = pool_store.warm_candidates(session, IMAGE, REQUEST)
            continue
        candidates = seen.pop(launch)
        if not candidates:
            continue
        candidate = candidates[0]
        with ctx.db.write() as session:
            state, version = session.execute(
                select(WorkloadRow.pool_state, WorkloadRow.version).where(
                    WorkloadRow.id == candidate.workload_id
                )
            ).one()
            free = state == PoolState.AVAILABLE.value and version == candidate.version
            taken = pool_store.claim_warm(session, candidate, {"owner_id": launchers[launch]})
        assert taken == free
        if taken:
            assert candidate.workload_id not in won, "handed out twice"
            won[candidate.workload_id] = launchers[launch]
    assert len(won) <= WARM
    assert _claims(ctx) == won


def _launchers(ctx: ServiceContext) -> list[str]:
    """Eight users, made once per database."""
    found = []
    for n in range(8):
        email = f"launch-{n}@example.com"
        with ctx.db.read() as session:
            user_id = session.scalar(select(UserRow.id).where(UserRow.email == email))
        found.append(user_id or add_user(ctx, email, "pw-launch-123456"))
    return found


def test_a_batch_of_launches_takes_each_warm_container_once(pool_ctx: ServiceContext) -> None:
    """Through the service: submissions from several threads share group commits; as
    many come from the pool as there are warm containers, each one a different one."""
    ctx = pool_ctx
    _hand_back(ctx)
    user_id = add_user(ctx, "claims@example.com", "pw-claims-123456")
    caller = Caller(user_id, "claims@example.com", Role.USER)
    spec = WorkloadCreate(image=IMAGE, cpu=0.5, ram_gb=0.5)
    with ThreadPoolExecutor(10) as threads:
        made = list(threads.map(lambda _i: create_workload(ctx, caller, spec), range(12)))
    warm = [w for w in made if w.from_pool]
    assert len(warm) == WARM
    assert len({w.id for w in warm}) == WARM
    assert _claims(ctx) == {w.id: user_id for w in warm}
