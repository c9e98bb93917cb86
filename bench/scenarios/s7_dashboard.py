"""S7 the dashboard in a real browser: first meaningful render of its pages with 1,000
servers and 10,000 workloads, and live updates on an open page (issue 15).

Two SQLite databases are seeded (``bench/dashboard_seed.py``: the fleet in bulk, the
workloads through the services): the measured one (1,000 simulated servers of 8 GPUs,
10,000 workloads from 51 users, running, stopped and pending with a reason) and the
baseline (25 servers, 250 workloads, all the admin's), measured the same way in the same
run with the same browser; ratios are taken against it. Each is served in turn by a real
``gpuyard serve`` (uvicorn, API, the built dashboard and the background loops, default
settings) on 127.0.0.1, and driven by headless Debian Chromium through Playwright, logged
in as the admin through the login form. Both share the 2-core machine with this process.

First render: each page is opened N times, each time in a fresh browser context (empty
cache: the HTML, script and styles are fetched too; the session cookie carried over). The
time is from the navigation's start to the frame after the first data row of the page's
table is in the DOM (``bench/browser.py``), median and p95 over the N loads. Beside it:
how many rows the table held then (a page may show a first part while the rest loads),
when the last script or style file and the last API answer had arrived (resource
timing), the longest main-thread task and the total blocking time until then; then when
the table held every row, how many rows were in the DOM (virtualisation), and how long a
jump to the last row takes to paint. The API answers the pages wait for are also timed
without a browser (bearer token, one client), to tell the server's share from the
browser's.

Live updates: with the page open, this process (its own engine and connection, as another
API replica or a worker would be) stops a workload whose row is on screen as ``running``,
at random moments; the time runs from just before the stop's transaction begins until an
observer in the page sees the row's status change (``Date.now()`` in the page against
``time.time()`` here: one machine, one wall clock). A change not shown within 10 s is
counted as lost.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser
from sqlalchemy import func, select

from bench.browser import (
    DashboardPage,
    LiveRun,
    Render,
    chromium,
    first_render,
    live_updates,
    log_in,
)
from bench.dashboard_seed import Seeded, SeedSize, seed
from bench.dbfleet import ADMIN_EMAIL, ADMIN_PASSWORD, connect
from bench.pg import PgDatabases
from bench.result import ScenarioResult, Table
from bench.serve import free_port, token, wait_until
from bench.serve import is_ready as server_ready
from bench.stats import percentile, ratio
from gpuyard.services.workloads.changes import stop_workload
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import WorkloadRow

#: The API's largest page (the dashboard asks for lists in pages of this size).
PAGE = 1000
WEB_DIST = Path(__file__).resolve().parents[2] / "src" / "gpuyard" / "web_dist"

#: The pages whose first render is measured, and those watched for live updates.
SERVERS = DashboardPage("Servers", "/servers", "servers-table")
ALL_WORKLOADS = DashboardPage("All workloads", "/all-workloads", "all-workloads-table")
MY_WORKLOADS = DashboardPage("My workloads", "/workloads", "workloads-table")
PAGES = (SERVERS, ALL_WORKLOADS, MY_WORKLOADS)
LIVE_PAGES = (ALL_WORKLOADS, MY_WORKLOADS)


@dataclass(frozen=True)
class S7Config:
    size: SeedSize
    baseline: SeedSize
    renders: int  # loads of each page
    changes: int  # live status changes per watched page
    api_repeats: int = 3  # times each API request is timed on its own
    #: Mean pause before each change (uniform in 0..2x): changes fall at every phase of
    #: the server's polling.
    pause_s: float = 0.3


#: Small enough to cost next to nothing, with enough running rows of the admin's for both
#: live passes (they stop up to 2 x ``changes`` of them).
_BASELINE = SeedSize(servers=25, workloads=250, users=5, admin_share=1.0)
QUICK = S7Config(SeedSize(1000, 10_000, 50), _BASELINE, renders=5, changes=20)
FULL = S7Config(SeedSize(1000, 10_000, 50), _BASELINE, renders=15, changes=50)
SMOKE = S7Config(
    SeedSize(20, 60, 3),
    SeedSize(5, 20, 2, admin_share=0.5),
    renders=1,
    changes=2,
    api_repeats=1,
    pause_s=0.1,
)
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


@dataclass
class SizeRun:
    """Everything measured on one database."""

    seeded: Seeded
    renders: dict[str, list[Render]]
    live: dict[str, LiveRun]
    #: The API requests the pages wait for: median ms and bytes of each.
    api: dict[str, tuple[float, int]]


def run(mode: str, pg: PgDatabases | None = None) -> ScenarioResult:
    """Seed both databases, then measure each with one browser (``pg`` is unused: the
    dashboard's cost does not depend on the backend; S1 and S6 compare those)."""
    cfg = CONFIGS[mode]
    if not (WEB_DIST / "index.html").exists():
        raise RuntimeError("the dashboard is not built: run `make web` first")
    big, small = cfg.size, cfg.baseline
    setup = (
        f"{big.servers:,} servers / {big.servers * 8:,} GPUs, {big.workloads:,} workloads of "
        f"{big.users + 1} users; baseline {small.servers} servers / {small.workloads} "
        f"workloads; {cfg.renders} loads per page, {cfg.changes} live changes per page; "
        "headless Chromium, SQLite, one `gpuyard serve`"
    )
    result = ScenarioResult("S7", "Dashboard in a real browser", setup)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="gpuyard-s7-") as tmp:
        root = Path(tmp)
        seeded = {name: seed(root / name / "data", size) for name, size in
                  (("baseline", small), ("measured", big))}  # fmt: skip
        load = os.getloadavg()[0]
        with chromium() as browser:
            runs = {
                name: _measure(browser, root / name / "data", seeded[name], cfg, rng)
                for name in ("baseline", "measured")
            }
    _report(result, runs["measured"], runs["baseline"], cfg.api_repeats)
    result.notes.append(
        f"Load average when the browser started: {load:.1f} on {os.cpu_count()} cores "
        f"(then {os.getloadavg()[0]:.1f}); the server, the browser and this process share them "
        "with whatever else runs."
    )
    return result


def _measure(
    browser: Browser, data_dir: Path, seeded: Seeded, cfg: S7Config, rng: random.Random
) -> SizeRun:
    ids = _workload_ids(data_dir)
    db = connect(data_dir, None)
    try:
        with _serve(data_dir) as url:
            session = log_in(browser, url, ADMIN_EMAIL, ADMIN_PASSWORD)
            rows = _expected_rows(data_dir)
            renders = {
                page.label: [
                    first_render(browser, url, session, page, rows[page.label])
                    for _ in range(cfg.renders)
                ]
                for page in PAGES
            }
            api = _api_times(url, cfg.api_repeats)
            live = {
                page.label: live_updates(
                    browser,
                    url,
                    session,
                    page,
                    cfg.changes,
                    lambda name: stop_workload(db.ctx, db.caller, ids[name]),
                    pause_s=lambda: rng.uniform(0, 2 * cfg.pause_s),
                )
                for page in LIVE_PAGES
            }
    finally:
        db.ctx.db.dispose()
    return SizeRun(seeded, renders, live, api)


def _api_times(url: str, repeats: int) -> dict[str, tuple[float, int]]:
    """The answers the pages wait for, asked without a browser (bearer token, one client,
    the same server): median milliseconds and size of each."""
    headers = {"Authorization": f"Bearer {token(url)}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=120) as client:
        me = client.get("/auth/me").json()["id"]
        count = client.get("/workloads", params={"limit": 1}).json()["count"]
        last = max(0, (count - 1) // PAGE * PAGE)

        def one(path: str, params: dict[str, Any]) -> int:
            response = client.get(path, params=params)
            response.raise_for_status()
            return len(response.content)

        def every_page() -> int:
            # As the All workloads page asks: the first page, then the rest at once.
            with ThreadPoolExecutor(8) as pool:
                first = one("/workloads", {"limit": PAGE})
                rest = pool.map(lambda offset: one("/workloads", {"limit": PAGE,
                                "offset": offset}), range(PAGE, count, PAGE))  # fmt: skip
                return first + sum(rest)

        requests: dict[str, Callable[[], int]] = {
            f"servers, limit {PAGE}": lambda: one("/servers", {"limit": PAGE}),
            f"workloads, newest {PAGE}": lambda: one("/workloads", {"limit": PAGE}),
            f"workloads, offset {last:,}": lambda: one("/workloads", {"limit": PAGE,
                                                                      "offset": last}),
            "workloads, every page (as All workloads)": every_page,
            f"my workloads, limit {PAGE}": lambda: one("/workloads", {"limit": PAGE,
                                                                      "owner_id": me}),
        }  # fmt: skip
        out: dict[str, tuple[float, int]] = {}
        for label, request in requests.items():
            times, size = [], 0
            for _ in range(repeats):
                started = time.perf_counter()
                size = request()
                times.append((time.perf_counter() - started) * 1000)
            out[label] = (percentile(times, 50), size)
    return out


def _expected_rows(data_dir: Path) -> dict[str, int]:
    """How many rows each page's table holds once loaded (My workloads asks for one page)."""
    db = connect(data_dir, None)
    try:
        with db.ctx.db.read() as session:
            workloads = select(func.count()).select_from(WorkloadRow)
            servers = session.scalar(select(func.count()).select_from(ServerRow)) or 0
            everyone = session.scalar(workloads) or 0
            mine = session.scalar(workloads.where(WorkloadRow.owner_id == db.caller.user_id)) or 0
    finally:
        db.ctx.db.dispose()
    return {SERVERS.label: servers, ALL_WORKLOADS.label: everyone,
            MY_WORKLOADS.label: min(mine, PAGE)}  # fmt: skip


def _workload_ids(data_dir: Path) -> dict[str, str]:
    db = connect(data_dir, None)
    try:
        with db.ctx.db.read() as session:
            return {
                name: wid for name, wid in session.execute(select(WorkloadRow.name, WorkloadRow.id))
            }
    finally:
        db.ctx.db.dispose()


@contextmanager
def _serve(data_dir: Path) -> Iterator[str]:
    """A real ``gpuyard serve`` (API, dashboard, loops) on the prepared database; stopped
    by its PID on exit."""
    env = {
        **os.environ,
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_LOG_LEVEL": "WARNING",
        "GPUYARD_LOCAL_DOCKER": "off",
    }
    port = free_port()
    args = [sys.executable, "-m", "gpuyard.cli.main", "serve", "--port", str(port)]
    args += ["--data-dir", str(data_dir)]
    log_path = data_dir.parent / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: server_ready(url), proc, "gpuyard serve",
                   lambda: log_path.read_text()[-3000:])  # fmt: skip
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f} ms"


def _report(result: ScenarioResult, measured: SizeRun, baseline: SizeRun, repeats: int) -> None:
    size, small = measured.seeded, baseline.seeded
    result.notes.append(
        f"Seeded in {size.seconds:.0f} s: "
        + ", ".join(f"{n:,} {status}" for status, n in size.statuses.items())
        + f" (baseline: {', '.join(f'{n} {s}' for s, n in small.statuses.items())})."
    )
    renders = Table(
        "First meaningful render: navigation start to the first rows painted "
        f"({size.size.servers:,} servers, {size.size.workloads:,} workloads; baseline "
        f"{small.size.servers} servers, {small.size.workloads} workloads)",
        ["page", "rows first shown", "median", "p95", "baseline median", "vs baseline",
         "scripts loaded", "data loaded", "longest task", "blocking", "all rows loaded",
         "rows in DOM", "jump to last row"],
    )  # fmt: skip
    worst_median = worst_p95 = 0.0
    for label, loads in measured.renders.items():
        painted = [r.rows_painted_ms for r in loads]
        base = [r.rows_painted_ms for r in baseline.renders.get(label, [])]
        median, p95 = percentile(painted, 50), percentile(painted, 95)
        base_median = percentile(base, 50)
        figures: dict[str, Any] = {
            "rows_loaded": loads[0].rows_loaded,
            "rows_at_first_paint": loads[0].rows_at_first_paint,
            "all_rows_median_ms": percentile([r.all_rows_ms for r in loads], 50),
            "rows_in_dom": max(r.rows_rendered for r in loads),
            "painted_median_ms": median,
            "painted_p95_ms": p95,
            "in_dom_median_ms": percentile([r.rows_in_dom_ms for r in loads], 50),
            "assets_loaded_median_ms": percentile([r.assets_loaded_ms for r in loads], 50),
            "api_loaded_median_ms": percentile([r.api_loaded_ms for r in loads], 50),
            "longest_task_ms": max(r.longest_task_ms for r in loads),
            "blocking_median_ms": percentile([r.blocking_ms for r in loads], 50),
            "scroll_to_end_median_ms": percentile([r.scroll_to_end_ms for r in loads], 50),
            "loads": painted,
        }
        result.figures[f"render {label}"] = figures
        result.baselines.setdefault("small database", {})[f"render {label}"] = {
            "painted_median_ms": base_median,
            "loads": base,
        }
        worst_median, worst_p95 = max(worst_median, median), max(worst_p95, p95)
        renders.add(
            label,
            f"{figures['rows_at_first_paint']:,} of {figures['rows_loaded']:,}",
            _ms(median),
            _ms(p95),
            _ms(base_median),
            f"{ratio(median, base_median):.2f}x",
            _ms(figures["assets_loaded_median_ms"]),
            _ms(figures["api_loaded_median_ms"]),
            _ms(figures["longest_task_ms"]),
            _ms(figures["blocking_median_ms"]),
            _ms(figures["all_rows_median_ms"]),
            figures["rows_in_dom"],
            _ms(figures["scroll_to_end_median_ms"]),
        )
    result.tables.append(renders)
    result.figures["first_render_median_s"] = worst_median / 1000
    result.figures["first_render_p95_s"] = worst_p95 / 1000

    live = Table(
        "Live updates: a status change committed by another connection, until the open "
        "page shows it",
        ["page", "database", "shown", "lost", "p50", "p95", "max"],
    )
    worst_live: float = 0.0
    lost = 0
    for name, run in (("measured", measured), ("baseline", baseline)):
        for label, changes in run.live.items():
            values = changes.latencies_ms
            p95 = percentile(values, 95)
            figures = {
                "shown": len(values),
                "lost": changes.lost,
                "p50_ms": percentile(values, 50),
                "p95_ms": p95,
                "max_ms": max(values, default=math.nan),
                "latencies_ms": values,
                "untried": changes.untried,
            }
            database = (
                f"{run.seeded.size.servers:,} servers / {run.seeded.size.workloads:,} workloads"
            )
            if name == "measured":
                result.figures[f"live {label}"] = figures
                worst_live = max(worst_live, p95) if values else math.nan
                lost += changes.lost
            else:
                result.baselines.setdefault("small database", {})[f"live {label}"] = figures
            live.add(label, database, len(values), changes.lost, _ms(figures["p50_ms"]),
                     _ms(p95), _ms(figures["max_ms"]))  # fmt: skip
            if changes.untried:
                result.notes.append(f"{label} ({database}): {changes.untried} changes not "
                                    "made, no running row of the caller's was left.")  # fmt: skip
    result.tables.append(live)

    api = Table(
        f"The API answers the pages wait for, asked without a browser (median of {repeats} each)",
        ["request", "measured database", "size", "baseline database", "size (baseline)"],
    )
    for label, (ms, size_bytes) in measured.api.items():
        base_ms, base_bytes = baseline.api.get(_baseline_label(label, baseline), (math.nan, 0))
        result.figures[f"api {label}"] = {"median_ms": ms, "bytes": size_bytes}
        api.add(label, _ms(ms), f"{size_bytes / 1e6:.2f} MB", _ms(base_ms),
                f"{base_bytes / 1e6:.2f} MB")  # fmt: skip
    result.tables.append(api)
    result.figures["live_p95_s"] = worst_live / 1000
    result.figures["live_lost"] = lost


def _baseline_label(label: str, baseline: SizeRun) -> str:
    """The same request on the baseline database (its last page has another offset)."""
    if label.startswith("workloads, offset"):
        return next((k for k in baseline.api if k.startswith("workloads, offset")), label)
    return label
