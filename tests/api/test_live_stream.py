"""GET /api/v1/stream over real HTTP (uvicorn on 127.0.0.1), on SQLite and PostgreSQL.

Changes are made through a second engine on the same database (another process, as far
as the database can tell: the app's process hears of them only through the database),
or through the API; the stream must carry them, resume with Last-Event-ID exactly, show
each caller only what the read policy lets them read, refuse hostile headers without a
5xx, and let go of a client that leaves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.app import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    add_user,
    make_context,
    make_settings,
    mint_token,
    sqlite_only,
    user_id_of,
)
from factories.live import StreamReader, is_placed, is_workload, served

from gpuyard.api.app import create_app
from gpuyard.services.bootstrap import build_context
from gpuyard.services.context import ServiceContext
from gpuyard.services.live.changes import QueueChanged
from gpuyard.services.live.feed import LiveFeed
from gpuyard.services.scheduling.cycle import run_scheduling_cycle

#: Short intervals: a keep-alive often enough that a closed client is noticed at once.
LIVE = {"stream_poll_interval_s": 0.05, "stream_keepalive_s": 0.2}


@dataclass
class Live:
    url: str
    ctx: ServiceContext  # the app's
    other: ServiceContext  # a second engine on the same database: "another process"
    feed: LiveFeed
    admin_token: str

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def submit(self, token: str | None = None, **body: Any) -> dict[str, Any]:
        with self.api(token) as client:
            response = client.post("/api/v1/workloads", json={"image": "busybox", **body})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def user(self, email: str) -> str:
        return mint_token(self.ctx, add_user(self.ctx, email, "some-pass-123"))


@pytest.fixture
def live(tmp_path: Path, database_url: str | None) -> Iterator[Live]:
    settings = make_settings(tmp_path / "data", database_url, **LIVE)
    ctx = make_context(settings)
    other = build_context(settings)
    app = create_app(ctx)
    try:
        with served(app) as url:
            token = mint_token(ctx, user_id_of(ctx, ADMIN_EMAIL))
            yield Live(url, ctx, other, app.state.live_feed, token)
    finally:
        other.db.dispose()
        ctx.db.dispose()


def test_a_change_committed_by_another_engine_appears_on_the_stream(live: Live) -> None:
    stream = StreamReader(live.url, live.admin_token)
    try:
        workload = live.submit(gpu=1, cpu=1, ram_gb=1)
        seen = stream.wait_for(is_workload(workload["id"], "pending"))
        assert any(e.event == "queue" for e in stream.wait_for(lambda e: e.event == "queue"))
        # The scheduler runs on the other engine: only the database tells the app.
        started = time.monotonic()
        run_scheduling_cycle(live.other)
        seen = stream.wait_for(lambda e: is_workload(workload["id"])(e) and e.data["server_id"])
        assert time.monotonic() - started < 5
        placed = seen[-1].data
        assert placed["status"] in ("scheduled", "starting", "running")
        assert len(placed["gpu_indices"]) == 1
        assert placed["gpu"] == 1
        assert placed["cpu"] == 1
        server = stream.wait_for(
            lambda e: e.event == "server" and e.data["id"] == placed["server_id"]
        )[-1]
        assert server.data["allocated"]["gpu"] >= 1
        ids = [int(e.id.rsplit("-", 1)[1]) for e in seen]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
    finally:
        stream.close()


def test_last_event_id_resumes_with_exactly_the_missed_events(live: Live) -> None:
    steady = StreamReader(live.url, live.admin_token)  # stays connected throughout
    leaving = StreamReader(live.url, live.admin_token)
    try:
        first = live.submit(cpu=1)
        last_seen = leaving.wait_for(is_workload(first["id"]))[-1].id
        steady.wait_for(lambda e: e.id == last_seen)
        leaving.close()
        missed = [live.submit(cpu=1)["id"] for _ in range(3)]
        run_scheduling_cycle(live.other)
        expected = steady.wait_for(
            lambda e: is_workload(missed[-1])(e) and e.data["status"] != "pending"
        )
        expected += steady.drain()
        back = StreamReader(live.url, live.admin_token, last_event_id=last_seen)
        try:
            replayed = back.wait_for(lambda e: e.id == expected[-1].id)
            assert [(e.id, e.event, e.data) for e in replayed] == [
                (e.id, e.event, e.data) for e in expected
            ]
            assert back.drain(0.3) == []  # nothing twice
        finally:
            back.close()
    finally:
        steady.close()


def test_a_user_never_receives_another_users_workloads(live: Live) -> None:
    alice, bob = live.user("alice@example.com"), live.user("bob@example.com")
    alice_stream, bob_stream = StreamReader(live.url, alice), StreamReader(live.url, bob)
    admin_stream = StreamReader(live.url, live.admin_token)
    try:
        alices = live.submit(alice, cpu=1)
        bobs = live.submit(bob, cpu=1)
        got_alice = alice_stream.wait_for(is_workload(alices["id"], "pending"))
        got_bob = bob_stream.wait_for(is_workload(bobs["id"], "pending"))
        run_scheduling_cycle(live.other)
        # The admin sees both, placed: by then every change has been published. One
        # transaction places both (one change mark), so they come in no given order.
        admin_stream.wait_for_each([is_placed(alices["id"]), is_placed(bobs["id"])])
        got_alice += (
            alice_stream.wait_for(lambda e: is_workload(alices["id"])(e) and e.data["server_id"])
            + alice_stream.drain()
        )
        got_bob += (
            bob_stream.wait_for(lambda e: is_workload(bobs["id"])(e) and e.data["server_id"])
            + bob_stream.drain()
        )
        assert {e.data["id"] for e in got_alice if e.event == "workload"} == {alices["id"]}
        assert {e.data["id"] for e in got_bob if e.event == "workload"} == {bobs["id"]}
        # Servers are fleet reading, open to every role; the queue is everyone's too.
        assert any(e.event == "server" for e in got_alice)
        assert any(e.event == "queue" for e in got_bob)
    finally:
        for stream in (alice_stream, bob_stream, admin_stream):
            stream.close()


@pytest.mark.parametrize(
    ("value", "status"),
    [
        pytest.param("x" * 65, 422, id="too long"),
        pytest.param("x" * 20_000, 422, id="far too long"),
        pytest.param("abc\x7fdef", 400, id="control character"),  # refused by uvicorn
        pytest.param("caf\u00e9-1", 422, id="not ASCII"),
        pytest.param("ffffffff-1", 200, id="another server's id"),
        pytest.param("not an id at all", 200, id="not an id"),
        pytest.param("{epoch}-999999999999999999", 200, id="newer than the stream"),
        pytest.param("{epoch}-" + "9" * 40, 200, id="huge number"),
        pytest.param("{epoch}--1", 200, id="negative"),
    ],
)
def test_a_hostile_last_event_id_is_refused_or_resynced(
    live: Live, value: str, status: int
) -> None:
    header = value.replace("{epoch}", live.feed.epoch).encode("latin-1")
    with live.api() as client:
        response = client.get(
            "/api/v1/stream", headers={"Last-Event-ID": header}, params={"max_s": "0.5"}
        )
    assert response.status_code == status, response.text
    if status == 422:
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in problem["errors"]] == ["Last-Event-ID"]
    elif status == 200:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "event: resync" in response.text


def test_an_id_older_than_the_history_gets_a_resync(live: Live) -> None:
    stream = StreamReader(live.url, live.admin_token)
    try:
        first = live.submit(cpu=1)
        old = stream.wait_for(is_workload(first["id"]))[-1].id
    finally:
        stream.close()
    for _ in range(live.ctx.settings.stream_history + 1):  # push it out of the history
        live.feed.publish([QueueChanged()])
    back = StreamReader(live.url, live.admin_token, last_event_id=old)
    try:
        resync = back.next()
        assert resync.event == "resync"
        assert "gone" in resync.data["reason"]
        assert resync.id == live.feed.event_id(live.feed.last_seq)
    finally:
        back.close()


def test_types_selects_event_kinds_and_is_validated(live: Live) -> None:
    only_servers = StreamReader(live.url, live.admin_token, params={"types": "servers"})
    try:
        live.submit(cpu=1)
        run_scheduling_cycle(live.other)
        got = only_servers.wait_for(lambda e: e.event == "server") + only_servers.drain()
        assert {e.event for e in got} == {"server"}
    finally:
        only_servers.close()
    with live.api() as client:
        for bad in ("servers,gpus", ",", "x" * 65):
            response = client.get("/api/v1/stream", params={"types": bad, "max_s": "0.2"})
            assert response.status_code == 422, (bad, response.text)
            assert [e["field"] for e in response.json()["errors"]] == ["types"]


def test_the_stream_is_well_formed_server_sent_events(live: Live) -> None:
    with live.api() as client:
        response = client.get("/api/v1/stream", params={"max_s": "0.7"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    lines = response.text.split("\n")
    assert f"retry: {live.ctx.settings.stream_retry_ms}" in lines
    assert lines.count(": keep-alive") >= 2  # every 0.2 s here


def test_credentials_are_required(live: Live) -> None:
    response = httpx.get(f"{live.url}/api/v1/stream", timeout=10)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_client_that_leaves_is_let_go(live: Live) -> None:
    streams = [StreamReader(live.url, live.admin_token) for _ in range(3)]
    assert live.feed.subscribers == 3
    for stream in streams:
        stream.close()
    deadline = time.monotonic() + 5
    while live.feed.subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.feed.subscribers == 0


def test_a_revoked_session_ends_the_stream(tmp_path: Path, database_url: str | None) -> None:
    settings = make_settings(tmp_path / "data", database_url, stream_recheck_s=0.2, **LIVE)
    ctx = make_context(settings)
    try:
        with served(create_app(ctx)) as url:
            user_token = mint_token(ctx, add_user(ctx, "carol@example.com", "some-pass-123"))
            stream = StreamReader(url, user_token)
            with httpx.Client(base_url=url, timeout=10) as client:
                out = client.post(
                    "/api/v1/auth/logout", headers={"Authorization": f"Bearer {user_token}"}
                )
            assert out.status_code in (200, 204), out.text
            assert stream.ended.wait(10), "the stream outlived its session"
            stream.close()
    finally:
        ctx.db.dispose()


def test_a_team_that_shares_its_work_shows_it_to_members_only(live: Live) -> None:
    alice, bob, carol = (
        add_user(live.ctx, f"{name}@example.com", "some-pass-123")
        for name in ("alice", "bob", "carol")
    )
    with live.api() as admin:
        team = admin.post(
            "/api/v1/teams",
            json={
                "name": "vision",
                "members_can_read": True,
                "members": [{"user_id": alice}, {"user_id": bob}],
            },
        )
    assert team.status_code == 201, team.text
    teammate = StreamReader(live.url, mint_token(live.ctx, alice))
    outsider = StreamReader(live.url, mint_token(live.ctx, carol))
    try:
        shared = live.submit(mint_token(live.ctx, bob), cpu=1, team_id=team.json()["id"])
        teammate.wait_for(is_workload(shared["id"], "pending"))
        own = live.submit(mint_token(live.ctx, carol), cpu=1)
        got = outsider.wait_for(is_workload(own["id"], "pending")) + outsider.drain()
        assert {e.data["id"] for e in got if e.event == "workload"} == {own["id"]}
    finally:
        teammate.close()
        outsider.close()


def test_the_dashboards_session_cookie_opens_a_stream(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as browser:
        login = browser.post(
            "/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "set_cookie": True},
        )
        assert login.status_code == 200, login.text
        # Set for /api and for /u (per-user routes): one name, two paths.
        assert {c.path for c in browser.cookies.jar if c.name == "gpuyard_session"} == {
            "/api",
            "/u",
        }
        with browser.stream("GET", "/api/v1/stream", params={"max_s": "1"}) as response:
            assert response.status_code == 200
            workload = live.submit(cpu=1)
            body = response.read().decode()
    assert f'"id":"{workload["id"]}"' in body
    assert "event: workload" in body


@sqlite_only
def test_the_request_body_deadlines_do_not_cut_a_stream(
    tmp_path: Path, database_url: str | None
) -> None:
    """A GET has an empty body, done at once: the body timeouts (api/body_limits.py) must
    not apply to the response that follows, however long it lasts."""
    settings = make_settings(
        tmp_path / "data", database_url, body_idle_timeout_s=0.2, body_timeout_s=0.3, **LIVE
    )
    ctx = make_context(settings)
    try:
        with served(create_app(ctx)) as url:
            token = mint_token(ctx, user_id_of(ctx, ADMIN_EMAIL))
            response = httpx.get(
                f"{url}/api/v1/stream",
                params={"max_s": "1.2"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        assert response.status_code == 200
        assert response.text.count(": keep-alive") >= 4  # it lasted well past both
    finally:
        ctx.db.dispose()
