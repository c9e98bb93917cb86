"""Deleting or renaming a cluster while another transaction names it, on PostgreSQL
(SQLite runs one writer at a time): each loser gets a 409 or a 422 naming why, never a
database error. Real concurrent transactions: the other side holds its transaction open
on a second connection while the service call waits on it in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings
from sqlalchemy import Connection, text

from gpuyard.api.schemas.workloads import WorkloadCreate
from gpuyard.domain.errors import Conflict, GpuyardError, InvalidInput
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.cluster_changes import delete_cluster, rename_cluster
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.servers import SimulatedServerSpec, create_server
from gpuyard.services.workloads.submission import create_workload

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def ctx(postgres_url: str, tmp_path: Path) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", postgres_url))
    yield context
    context.db.dispose()


def _while_held(
    ctx: ServiceContext, hold: Callable[[Connection], None], call: Callable[[], object]
) -> BaseException | None:
    """Run ``hold`` in a transaction of its own, then ``call`` in a thread; once ``call``
    waits on a lock the transaction holds, commit it. What ``call`` raised, if anything."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    with ctx.db.engine.connect() as other:
        transaction = other.begin()
        hold(other)
        pid = other.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread = threading.Thread(target=run)
        thread.start()
        with ctx.db.engine.connect() as watch:
            while thread.is_alive():  # until the call waits on our locks (or is done)
                waiting = watch.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND :pid = ANY(pg_blocking_pids(pid))"
                    ),
                    {"pid": pid},
                ).scalar_one()
                watch.rollback()
                if waiting:
                    break
        transaction.commit()
        thread.join()
    return raised[0] if raised else None


def test_a_delete_waits_for_a_server_joining_and_refuses(ctx: ServiceContext) -> None:
    admin = admin_caller(ctx)
    cluster = create_cluster(ctx, admin, "racing", ClusterKind.SIMULATED)
    with ctx.db.engine.connect() as conn:
        server_id = conn.execute(text("SELECT id FROM servers LIMIT 1")).scalar_one()

    def join(other: Connection) -> None:  # as a registration's insert names the cluster
        other.execute(
            text("UPDATE servers SET cluster_id = :c WHERE id = :s"),
            {"c": cluster.id, "s": server_id},
        )

    raised = _while_held(ctx, join, lambda: delete_cluster(ctx, admin, cluster.id))
    assert isinstance(raised, Conflict), repr(raised)
    assert "still has 1 server" in str(raised.detail)


def test_a_server_registered_while_its_cluster_goes_is_refused(ctx: ServiceContext) -> None:
    admin = admin_caller(ctx)
    cluster = create_cluster(ctx, admin, "going", ClusterKind.SIMULATED)

    def delete(other: Connection) -> None:  # as delete_cluster does, locked first
        other.execute(text("SELECT id FROM clusters WHERE id = :c FOR UPDATE"), {"c": cluster.id})
        other.execute(text("DELETE FROM clusters WHERE id = :c"), {"c": cluster.id})

    spec = SimulatedServerSpec("late", cluster.id, cpu=4, ram_gb=8)
    raised = _while_held(ctx, delete, lambda: create_server(ctx, admin, spec))
    assert isinstance(raised, InvalidInput), repr(raised)
    assert "does not exist" in str(raised.detail)


def test_two_renames_to_one_name_give_a_conflict(ctx: ServiceContext) -> None:
    admin = admin_caller(ctx)
    first = create_cluster(ctx, admin, "first", ClusterKind.SIMULATED)
    second = create_cluster(ctx, admin, "second", ClusterKind.SIMULATED)

    def rename(other: Connection) -> None:
        other.execute(text("UPDATE clusters SET name = 'same' WHERE id = :c"), {"c": first.id})

    raised = _while_held(ctx, rename, lambda: rename_cluster(ctx, admin, second.id, "same"))
    assert isinstance(raised, Conflict), repr(raised)
    assert "a cluster named 'same' already exists" in str(raised.detail)
    assert isinstance(raised, GpuyardError)


def test_a_workload_submitted_while_its_cluster_goes_is_refused(ctx: ServiceContext) -> None:
    admin = admin_caller(ctx)
    cluster = create_cluster(ctx, admin, "leaving", ClusterKind.SIMULATED)

    def delete(other: Connection) -> None:
        other.execute(text("SELECT id FROM clusters WHERE id = :c FOR UPDATE"), {"c": cluster.id})
        other.execute(text("DELETE FROM clusters WHERE id = :c"), {"c": cluster.id})

    spec = WorkloadCreate(image="busybox", gpu=0, cluster_id=cluster.id)
    raised = _while_held(ctx, delete, lambda: create_workload(ctx, admin, spec))
    assert isinstance(raised, InvalidInput), repr(raised)
    assert "does not exist" in str(raised.detail)
