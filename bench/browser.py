"""The dashboard in headless Debian Chromium (Playwright for Python): what a page costs to
show, and how soon a change in the database shows on an open page.

Timestamps are taken inside the page. First render: ``performance.now()`` (milliseconds
since this document's navigation started) when the first data row of the page's table is
in the DOM, and again at the next frame after it (rows painted); a ``MutationObserver``
installed before any page script runs watches for it. Live updates: ``Date.now()`` when an
observer sees the row's status change, against ``time.time()`` taken by the bench just
before it writes the change: both read the same machine's wall clock.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
VIEWPORT = {"width": 1440, "height": 900}
#: How long a page may take to show its rows, or a change, before it counts as missing.
RENDER_TIMEOUT_S = 60.0
#: The root element once the page's live stream is open.
LIVE_OPEN = 'html[data-live="open"]'


@dataclass(frozen=True)
class DashboardPage:
    """A page of the dashboard and the table whose rows make its render meaningful."""

    label: str
    path: str
    table_test_id: str

    @property
    def row_selector(self) -> str:
        return f'[data-testid="{self.table_test_id}"] tbody tr[data-index]'


@dataclass(frozen=True)
class Render:
    """One load of a page, in milliseconds since its navigation started."""

    rows_in_dom_ms: float
    rows_painted_ms: float
    rows_rendered: int
    #: When the last script/style file and the last API answer before the rows arrived.
    assets_loaded_ms: float
    api_loaded_ms: float
    #: Rows the table held when its first rows were painted, then all of them (loaded),
    #: when it held them all, and how long a jump to its last row then took to paint.
    rows_at_first_paint: int
    rows_loaded: int
    all_rows_ms: float
    scroll_to_end_ms: float
    #: Long tasks (over 50 ms on the main thread) until the rows were painted.
    longest_task_ms: float
    blocking_ms: float  # sum of each long task's time over 50 ms (total blocking time)


def chromium_executable() -> str:
    """Debian's Chromium (package ``chromium``); Playwright's own browsers are not used."""
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("Chromium is not installed (Debian package chromium)")
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (its processes ended) on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def log_in(browser: Browser, url: str, email: str, password: str) -> dict[str, Any]:
    """Log in through the login form; the session (cookies) to open other contexts with."""
    context = browser.new_context(base_url=url, viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda u: "/login" not in u, timeout=RENDER_TIMEOUT_S * 1000)
        state: dict[str, Any] = dict(context.storage_state())
        return state
    finally:
        context.close()


_FIRST_ROWS = """
(() => {
  const selector = %s;
  const longTasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) longTasks.push(entry.duration);
    }).observe({ type: 'longtask', buffered: true });
  } catch (error) { /* no long-task timing in this browser */ }
  window.__benchLongTasks = longTasks;
  const seen = () => {
    if (window.__benchRowsInDom !== undefined || !document.querySelector(selector)) return false;
    window.__benchRowsInDom = performance.now();
    performance.mark('bench:rows-in-dom');
    const ends = (part) => performance.getEntriesByType('resource')
      .filter((entry) => entry.name.includes(part)).map((entry) => entry.responseEnd);
    window.__benchLoaded = {
      assets: Math.max(0, ...ends('/assets/')), api: Math.max(0, ...ends('/api/')),
    };
    // The frame that shows them: after the next animation frame has been painted.
    requestAnimationFrame(() => setTimeout(() => {
      window.__benchRowsPainted = performance.now();
      window.__benchLongTasksAtPaint = longTasks.slice();
    }, 0));
    return true;
  };
  const observer = new MutationObserver(() => { if (seen()) observer.disconnect(); });
  observer.observe(document, { childList: true, subtree: true });
})();
"""


def first_render(
    browser: Browser, url: str, session: dict[str, Any], target: DashboardPage, rows: int
) -> Render:
    """Open ``target`` in a fresh context (empty cache, the session's cookies) and wait
    for its first rows to be painted, then for its table to hold all ``rows``."""
    context = _context(browser, url, session)
    try:
        context.add_init_script(script=_FIRST_ROWS % json.dumps(target.row_selector))
        page = context.new_page()
        page.goto(target.path, wait_until="commit")
        page.wait_for_function(
            "() => window.__benchRowsPainted !== undefined", timeout=RENDER_TIMEOUT_S * 1000
        )
        figures: dict[str, Any] = page.evaluate(
            """(selector) => ({
                dom: window.__benchRowsInDom,
                painted: window.__benchRowsPainted,
                rows: document.querySelectorAll(selector).length,
                tasks: window.__benchLongTasksAtPaint,
                loaded: window.__benchLoaded,
            })""",
            target.row_selector,
        )
        first_rows = page.evaluate(_TABLE_ROWS, target.row_selector)
        # A page may show a first part at once and the rest as it arrives.
        page.wait_for_function(
            f"(selector) => ({_TABLE_ROWS})(selector) >= {int(rows)}",
            arg=target.row_selector,
            timeout=RENDER_TIMEOUT_S * 1000,
        )
        all_rows_ms = float(page.evaluate("() => performance.now()"))
        loaded, scroll_ms = page.evaluate(_SCROLL_TO_END, target.row_selector)
    finally:
        context.close()
    tasks = [float(t) for t in figures["tasks"]]
    return Render(
        rows_in_dom_ms=float(figures["dom"]),
        rows_painted_ms=float(figures["painted"]),
        rows_rendered=int(figures["rows"]),
        assets_loaded_ms=float(figures["loaded"]["assets"]),
        api_loaded_ms=float(figures["loaded"]["api"]),
        rows_at_first_paint=int(first_rows),
        rows_loaded=int(loaded),
        all_rows_ms=all_rows_ms,
        scroll_to_end_ms=float(scroll_ms),
        longest_task_ms=max(tasks, default=0.0),
        blocking_ms=sum(max(0.0, t - 50) for t in tasks),
    )


#: How many rows the table holds (the virtualised table says so in aria-rowcount).
_TABLE_ROWS = """(selector) => {
  const region = document.querySelector(selector)?.closest('[data-testid]');
  const table = region ? region.querySelector('table') : null;
  return table ? Number(table.getAttribute('aria-rowcount')) - 1 : 0;
}"""

#: Jump to the table's last row; the rows it holds and ms until that row is painted.
_SCROLL_TO_END = """
async (selector) => {
  const region = document.querySelector(selector).closest('[data-testid]');
  const total = Number(region.querySelector('table').getAttribute('aria-rowcount')) - 1;
  const started = performance.now();
  region.scrollTop = region.scrollHeight;
  await new Promise((resolve) => {
    const check = () => (region.querySelector(`tr[data-index="${total - 1}"]`)
      ? resolve() : requestAnimationFrame(check));
    check();
  });
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return [total, performance.now() - started];
}
"""

_WATCH = """
(selector) => {
  if (window.__benchWatch) return;
  const watched = new Map();  // workload name -> status it had
  window.__benchSeen = {};
  const check = () => {
    if (watched.size === 0) return;
    for (const row of document.querySelectorAll(selector)) {
      const link = [...row.querySelectorAll('a')].find((a) => watched.has(a.textContent.trim()));
      if (!link) continue;
      const name = link.textContent.trim();
      const badge = row.querySelector('[data-status]');
      if (badge && badge.getAttribute('data-status') !== watched.get(name)) {
        window.__benchSeen[name] = Date.now();
        watched.delete(name);
      }
    }
  };
  new MutationObserver(check).observe(document.body, {
    childList: true, subtree: true, characterData: true, attributes: true,
    attributeFilter: ['data-status'],
  });
  window.__benchWatch = (name, status) => { watched.set(name, status); check(); };
}
"""

_RENDERED = """
(selector) => [...document.querySelectorAll(selector)].map((row) => {
  const badge = row.querySelector('[data-status]');
  const link = row.querySelector('a');
  return [link ? link.textContent.trim() : '', badge ? badge.getAttribute('data-status') : ''];
})
"""


@dataclass(frozen=True)
class LiveRun:
    latencies_ms: list[float]
    lost: int
    #: Changes not made: no row with the status was left on the page.
    untried: int = 0


def live_updates(
    browser: Browser,
    url: str,
    session: dict[str, Any],
    target: DashboardPage,
    changes: int,
    change: Callable[[str], None],
    *,
    status: str = "running",
    pause_s: Callable[[], float] = lambda: 0.2,
    lost_after_s: float = 10.0,
) -> LiveRun:
    """Open ``target``; ``changes`` times, pick a row on screen whose status is
    ``status``, call ``change(name)`` (which writes a new status for that workload from
    another connection) and time until the row shows a different status. After three
    changes in a row that never show, the rest are not tried (counted as lost)."""
    context = _context(browser, url, session)
    latencies: list[float] = []
    lost = untried = 0
    try:
        page = context.new_page()
        page.goto(target.path)
        page.wait_for_selector(target.row_selector, timeout=RENDER_TIMEOUT_S * 1000)
        # The dashboard marks the root once its stream is open (web/src/api/live.ts); on
        # a page without live updates this times out and its changes count as lost.
        with suppress(PlaywrightTimeout):
            page.wait_for_selector(LIVE_OPEN, state="attached", timeout=lost_after_s * 1000)
        page.evaluate(_WATCH, target.row_selector)
        used: set[str] = set()
        for _ in range(changes):
            if lost >= 3 and not latencies:  # this page does not update live
                lost = changes
                break
            try:
                name = _pick_row(page, target, status, used)
            except LookupError:
                untried = changes - len(latencies) - lost
                break
            used.add(name)
            page.evaluate("([name, status]) => window.__benchWatch(name, status)", [name, status])
            time.sleep(pause_s())  # changes fall at every phase of the server's polling
            began_ms = time.time() * 1000
            change(name)
            try:
                page.wait_for_function(
                    "(name) => window.__benchSeen[name] !== undefined",
                    arg=name,
                    timeout=lost_after_s * 1000,
                    polling=50,
                )
            except PlaywrightTimeout:  # never shown: counted as lost
                lost += 1
                continue
            seen_ms = float(page.evaluate("(name) => window.__benchSeen[name]", name))
            latencies.append(seen_ms - began_ms)
    finally:
        context.close()
    return LiveRun(latencies, lost, untried)


def _pick_row(page: Page, target: DashboardPage, status: str, used: set[str]) -> str:
    """A workload whose row is rendered with ``status``; scrolls the table down a screen
    at a time when none is left in view."""
    region = page.get_by_test_id(target.table_test_id)
    for _ in range(50):
        for name, shown in page.evaluate(_RENDERED, target.row_selector):
            if shown == status and name and name not in used:
                return str(name)
        region.evaluate("(el) => { el.scrollTop += el.clientHeight; }")
        page.wait_for_timeout(300)
    raise LookupError(f"no {status} row left on {target.label} to change")


def _context(browser: Browser, url: str, session: dict[str, Any]) -> BrowserContext:
    context = browser.new_context(
        base_url=url,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        storage_state=session,  # type: ignore[arg-type]
        color_scheme="light",
        locale="en-GB",
    )
    context.set_default_timeout(RENDER_TIMEOUT_S * 1000)
    return context
