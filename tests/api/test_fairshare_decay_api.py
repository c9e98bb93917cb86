"""Time-based fair share through the API (SQLite and PostgreSQL): the history loop's tick
accrues each team's allocation into its decayed usage, ``GET /fairshare`` shows it with
Slurm's factor, and the queue serves the team that held the fleet lately after the one
that did not. Off by default: nothing is accrued and the view shows factor 1."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories.app import authed_client, make_context, make_settings, settle
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gpuyard.scheduler.usage_decay import saturation
from gpuyard.services.context import ServiceContext
from gpuyard.services.usage.sampling import sample_usage
from gpuyard.store import team_usage

HALF_LIFE_S = 600.0
INTERVAL_S = 60  # the history loop's tick (GPUYARD_HISTORY_SAMPLE_INTERVAL_S)
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(params=[HALF_LIFE_S, None], ids=["decay", "off"])
def decay_ctx(
    tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest
) -> Iterator[ServiceContext]:
    context = make_context(
        make_settings(
            tmp_path / "data",
            database_url,
            fairshare_half_life_s=request.param,
            history_sample_interval_s=INTERVAL_S,
        )
    )
    yield context
    context.db.dispose()


def _team(client: TestClient, name: str, **body: Any) -> str:
    response = client.post("/api/v1/teams", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _run(client: TestClient, team_id: str, name: str) -> str:
    response = client.post(
        "/api/v1/workloads",
        json={
            "image": "pytorch/pytorch:2.4",
            "name": name,
            "cpu": 4,
            "ram_gb": 8,
            "gpu": 8,
            "team_id": team_id,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _tick(ctx: ServiceContext, at: datetime) -> None:
    ctx.clock = lambda: at
    sample_usage(ctx)


def _rows(client: TestClient) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    response = client.get("/api/v1/fairshare")
    assert response.status_code == 200, response.text
    body = response.json()
    return body, {r["name"]: r for r in body["data"]}


def test_the_team_that_held_the_fleet_waits_behind_the_one_that_did_not(
    decay_ctx: ServiceContext,
) -> None:
    """The same history under plain DRF (``off``) splits the fleet two and two."""
    ctx = decay_ctx
    decay = ctx.settings.fairshare_half_life_s is not None
    with authed_client(ctx) as client:
        # Under one department, so that plain DRF orders them too (a placed tree).
        dept = _team(client, "dept")
        heavy = _team(client, "heavy", hierarchy={"parent_id": dept})
        light = _team(client, "light", hierarchy={"parent_id": dept})
        held = [_run(client, heavy, f"h{i}") for i in range(4)]  # the whole 32-GPU fleet
        settle(ctx)
        # Twenty ticks a minute apart: the first counts one interval, each next one more.
        ticks = 21
        for k in range(ticks):
            _tick(ctx, T0 + timedelta(seconds=INTERVAL_S * k))
        held_s = INTERVAL_S * ticks
        expected_gpu_hours = 32 * saturation(HALF_LIFE_S) * (1 - 2 ** (-held_s / HALF_LIFE_S))
        expected_gpu_hours /= 3600

        body, rows = _rows(client)
        if not decay:
            assert body["half_life_s"] is None
            assert rows["heavy"]["decayed_usage"]["gpu"] == 0
            assert rows["heavy"]["fairshare_factor"] == 1.0
            expected_gpu_hours = 0.0
        else:
            _check_decayed(ctx, rows, heavy, expected_gpu_hours, held_s)

        # A second tick of the same instant adds nothing.
        _tick(ctx, T0 + timedelta(seconds=INTERVAL_S * 20))
        assert _rows(client)[1]["heavy"]["decayed_usage"]["gpu"] == pytest.approx(
            expected_gpu_hours, 1e-3
        )

        for workload_id in held:
            response = client.post(f"/api/v1/workloads/{workload_id}/stop")
            assert response.status_code == 200, response.text
        # Both teams now queue four 8-GPU workloads on the four 8-GPU servers. Plain DRF
        # runs two of each; with heavy's ratio counted 2^(U/S) ~ 2.9 times, light is
        # served three times in the first four places (L: 0, H: 0 but more history,
        # L: 0.5 < 0.5 x 2.9, L: 1.0 < 1.45).
        for i in range(4):
            _run(client, heavy, f"again-h{i}")
            _run(client, light, f"l{i}")
        settle(ctx)
        running = [
            w["name"]
            for w in client.get("/api/v1/workloads", params={"status": "running"}).json()["data"]
        ]
        lights = sum(name.startswith("l") for name in running)
        assert (len(running), lights) == ((4, 3) if decay else (4, 2)), running
        if not decay:
            return
        # An hour later (the loop was down): the old figure decays over the hour, but
        # what is held now counts for three intervals only, not for the whole gap; light's
        # first accrual counts one interval.
        _tick(ctx, T0 + timedelta(seconds=INTERVAL_S * 20 + 3600))
        rows = _rows(client)[1]
        gpu_hours = saturation(HALF_LIFE_S) / 3600
        heavy_now = expected_gpu_hours * 2**-6 + 8 * gpu_hours * (1 - 2 ** (-180 / HALF_LIFE_S))
        assert rows["heavy"]["decayed_usage"]["gpu"] == pytest.approx(heavy_now, abs=1e-3)
        light_now = 24 * gpu_hours * (1 - 2 ** (-INTERVAL_S / HALF_LIFE_S))
        assert rows["light"]["decayed_usage"]["gpu"] == pytest.approx(light_now, abs=1e-3)
        # The department carries both.
        assert rows["dept"]["decayed_usage"]["gpu"] == pytest.approx(
            heavy_now + light_now, abs=1e-3
        )


def _check_decayed(
    ctx: ServiceContext,
    rows: dict[str, dict[str, Any]],
    heavy: str,
    expected_gpu_hours: float,
    held_s: float,
) -> None:
    assert ctx.settings.fairshare_half_life_s == HALF_LIFE_S
    assert rows["heavy"]["decayed_usage"]["gpu"] == pytest.approx(expected_gpu_hours, abs=1e-3)
    assert rows["heavy"]["decayed_usage"]["cpu"] == pytest.approx(expected_gpu_hours / 2, abs=1e-3)
    assert rows["light"]["decayed_usage"]["gpu"] == 0
    # U: the decayed share of the fleet; S: half (two teams of weight 1).
    share = 1 - 2 ** (-held_s / HALF_LIFE_S)
    assert rows["heavy"]["fairshare_factor"] == pytest.approx(2 ** (-share / 0.5), 1e-4)
    assert rows["light"]["fairshare_factor"] == 1.0
    with ctx.db.read() as session:
        stored = team_usage.decayed_usage(session)
    assert set(stored) == {heavy}
    assert stored[heavy].accrued_at == (T0 + timedelta(seconds=INTERVAL_S * 20)).timestamp()


def test_off_by_default_nothing_is_accrued(ctx: ServiceContext, client: TestClient) -> None:
    team = _team(client, "t")
    _run(client, team, "w")
    settle(ctx)
    _tick(ctx, T0)
    _tick(ctx, T0 + timedelta(seconds=10))
    body, rows = _rows(client)
    assert body["half_life_s"] is None
    assert rows["t"]["decayed_usage"] == {"cpu": 0, "ram_gb": 0, "storage_gb": 0, "gpu": 0}
    assert rows["t"]["fairshare_factor"] == 1.0
    with ctx.db.read() as session:
        assert team_usage.decayed_usage(session) == {}


@pytest.mark.parametrize("value", [0, 59, 366 * 86400 + 1, -1, math.inf, math.nan, "soon"])
def test_a_half_life_out_of_bounds_is_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ValidationError, match="fairshare_half_life_s"):
        make_settings(tmp_path, None, fairshare_half_life_s=value)
