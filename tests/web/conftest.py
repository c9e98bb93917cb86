"""Browser tests of the dashboard: one real `gpuyard serve` (simulated demo cluster) and
one headless Debian Chromium per session, a fresh browser context (cookies, storage) per
test. The dashboard is built first when its build is missing or stale (web/build.py).

Marked `integration` (+ `browser`): without Chromium or npm they skip, and in CI that skip
fails the run (tests/conftest.py)."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories.processes import serve_processes
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from web.build import NodeMissing, ensure_built
from web.docker_cluster import docker_cluster  # noqa: F401 (a fixture for the modules here)

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "web-tests-admin-password"
USER_PASSWORD = "web-tests-user-password"
VIEWPORT = {"width": 1280, "height": 800}
CLIENT_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the dashboard in a real Chromium")


@dataclass
class LiveServer:
    """A running `gpuyard serve` and an admin API session on it."""

    url: str
    admin_token: str

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def create_invite(self, email: str, role: str = "user") -> str:
        invite = self.api("POST", "/invites", json={"email": email, "role": role})
        code: str = invite["code"]
        return code

    def login_token(self, email: str, password: str) -> str:
        response = httpx.post(
            f"{self.url}/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture(scope="session")
def dashboard_dist() -> Path:
    try:
        return ensure_built()
    except NodeMissing as exc:
        pytest.skip(f"cannot build the dashboard: {exc}")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is not installed (Debian package chromium)")
    return found


@pytest.fixture(scope="session")
def live_server(
    dashboard_dist: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("web-serve") / "data"
    data_dir.mkdir()
    env = {
        "GPUYARD_ADMIN_EMAIL": ADMIN_EMAIL,
        "GPUYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "GPUYARD_DEMO": "true",
        "GPUYARD_LOCAL_DOCKER": "off",
        # Place and start workloads quickly (the defaults are 2 s).
        "GPUYARD_SCHEDULER_INTERVAL_S": "0.3",
        "GPUYARD_STARTER_INTERVAL_S": "0.3",
        # Every browser test logs in from 127.0.0.1 against this one server: on a fast
        # machine they pass the default 30 attempts a minute per address and the later
        # tests meet "too many login attempts". The throttle has its own tests
        # (tests/api/test_login_lockout.py, tests/auth/test_login_throttle.py).
        "GPUYARD_LOGIN_IP_MAX_ATTEMPTS": "100000",
    }
    with serve_processes(1, data_dir, None, env) as (url,):
        server = LiveServer(url=url, admin_token="")
        server.admin_token = server.login_token(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield server


@pytest.fixture(scope="package")
def browser(chromium_executable: str) -> Iterator[Browser]:
    # Package-scoped: Playwright's sync API keeps an event loop running in this thread
    # until it stops, and a parallel worker (pytest-xdist) runs other packages' tests,
    # which call asyncio.run, after browser tests.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        color_scheme="light",
        reduced_motion="reduce",
        locale="en-GB",
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose console must stay free of script errors, 5xx answers and CSP
    violations. 4xx answers are the API saying no (the "who am I" probe before login, a
    used invite code): the pages show them, the browser logs them."""
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            problems.append(f"CSP: {text}")
        elif message.type == "error" and not CLIENT_ERROR.search(text):
            problems.append(f"console error: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page
    assert not problems, "\n".join(problems)


@pytest.fixture
def admin_page(page: Page) -> Page:
    """A page logged in as the admin, on My workloads."""
    from web.pages import LoginPage, WorkloadsPage

    login = LoginPage(page)
    login.open()
    login.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    return page
