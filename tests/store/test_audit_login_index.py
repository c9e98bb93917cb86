"""Each user's last login (``last_logins``, the users' list) is read through the
(actor_id, action, at) index of audit_events, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from gpuyard.domain.audit import LOGIN_ACTION
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.audit_log import last_logins
from gpuyard.store.database import Database

INDEX = "ix_audit_events_actor_action_at"


def test_last_logins_has_its_index_and_finds_each_users_latest(db: Database) -> None:
    start = datetime(2026, 12, 4, tzinfo=UTC)
    with db.write() as session:
        for minutes, user in [(1, "u1"), (5, "u1"), (3, "u2")]:
            actor = AuditActor(user, f"{user}@example.com", None)
            at = start + timedelta(minutes=minutes)
            record_audit(session, actor, LOGIN_ACTION, "user", user, at, {})
        record_audit(
            session,
            AuditActor("u2", None, None),
            "auth.logout",
            "user",
            "u2",
            start + timedelta(minutes=9),
            {},
        )
    with db.read() as session:
        found = last_logins(session, ["u1", "u2", "u3"])
        indexes = inspect(session.connection()).get_indexes("audit_events")
    assert found == {"u1": start + timedelta(minutes=5), "u2": start + timedelta(minutes=3)}
    assert {"name": INDEX, "columns": ["actor_id", "action", "at"]} in [
        {"name": i["name"], "columns": i["column_names"]} for i in indexes
    ]
    if db.engine.dialect.name == "sqlite":  # the planner's choice, where it is stable
        with db.engine.connect() as conn:
            plan = conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT actor_id, max(at) FROM audit_events "
                    "WHERE action = :a AND actor_id IN ('u1', 'u2') GROUP BY actor_id"
                ),
                {"a": LOGIN_ACTION},
            ).all()
        assert any(INDEX in str(row) for row in plan), plan
