"""Session pages in a real browser: login, wrong password, registration with an invite,
what a user may not see, logout, and the theme choice."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, LiveServer, unique_email
from web.pages import AppShell, LoginPage, RegisterPage, WorkloadsPage
from web.pages.app_shell import ADMIN_NAV, FLEET_NAV, USER_NAV, WORK_NAV

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_the_admin_logs_in_and_sees_every_section(page: Page) -> None:
    login = LoginPage(page)
    login.open()
    login.screenshot("login")
    login.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    assert AppShell(page).nav_labels() == WORK_NAV + FLEET_NAV + ADMIN_NAV


def test_a_wrong_password_shows_an_error_and_stays_logged_out(page: Page) -> None:
    login = LoginPage(page)
    login.open()
    login.log_in(ADMIN_EMAIL, "not-the-password")
    expect(login.error).to_have_text("Wrong email or password.")
    login.expect_loaded()
    page.goto("/workloads")
    login.expect_loaded()


def test_an_invited_user_registers_and_sees_no_admin_page(
    page: Page, live_server: LiveServer
) -> None:
    email = unique_email("invitee")
    code = live_server.create_invite(email)
    register = RegisterPage(page)
    register.open()
    register.screenshot("register")
    register.open_with_code(code)
    expect(register.invite_code).to_have_value(code)
    register.register(None, email, USER_PASSWORD, username="invitee")

    WorkloadsPage(page).expect_loaded()
    shell = AppShell(page)
    assert shell.nav_labels() == USER_NAV
    for path in ("/admin/users", "/admin/invites", "/admin/audit", "/fleet", "/servers"):
        page.goto(path)
        shell.expect_not_allowed()
        assert shell.nav_labels() == USER_NAV


def test_registering_with_a_used_invite_says_why(page: Page, live_server: LiveServer) -> None:
    email = unique_email("twice")
    code = live_server.create_invite(email)
    live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    register = RegisterPage(page)
    register.open()
    register.register(code, unique_email("other"), USER_PASSWORD)
    expect(register.error).to_be_visible()
    register.expect_loaded()


def test_logout_ends_the_session_and_login_returns_to_the_page(
    admin_page: Page, live_server: LiveServer
) -> None:
    page = admin_page
    session = _session_cookie(page)
    AppShell(page).log_out()
    login = LoginPage(page)
    login.expect_loaded()
    # The server refused the session's token from then on (the logout really happened).
    response = httpx.get(f"{live_server.url}/api/v1/auth/me", cookies={"gpuyard_session": session})
    assert response.status_code == 401
    # Logged out, a dashboard URL sends to login, and back after logging in.
    page.goto("/queue")
    login.expect_loaded()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fqueue$"))
    login.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/queue$"))


def test_unsafe_requests_echo_the_csrf_cookie(admin_page: Page) -> None:
    page = admin_page
    csrf = {c["name"]: c["value"] for c in page.context.cookies()}["gpuyard_csrf"]
    with page.expect_request("**/api/v1/auth/logout") as logout:
        AppShell(page).log_out()
    assert logout.value.method == "POST"
    assert logout.value.headers["x-csrf-token"] == csrf
    assert logout.value.response().status == 204  # type: ignore[union-attr]


def test_an_expired_session_sends_to_login_and_back(admin_page: Page) -> None:
    page = admin_page
    page.context.clear_cookies()  # as if the session expired or was revoked elsewhere
    WorkloadsPage(page).refresh()  # the next API call answers 401
    login = LoginPage(page)
    login.expect_loaded()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fworkloads$"))
    login.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    WorkloadsPage(page).expect_loaded()


def test_login_works_from_the_keyboard_alone(page: Page) -> None:
    login = LoginPage(page)
    login.open()
    expect(login.email).to_be_focused()
    page.keyboard.type(ADMIN_EMAIL)
    page.keyboard.press("Tab")
    expect(login.password).to_be_focused()
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    WorkloadsPage(page).expect_loaded()
    # The nav is reachable with Tab too.
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement?.textContent ?? ''")
        if focused.strip() == "Launch":
            break
    else:
        raise AssertionError("Tab never reached the Launch nav link")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Launch a workload", level=1)).to_be_visible()


def _session_cookie(page: Page) -> str:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return cookies["gpuyard_session"]


def test_the_theme_choice_survives_a_reload(admin_page: Page) -> None:
    page = admin_page
    shell = AppShell(page)
    assert shell.color_scheme() == "light"
    shell.theme_toggle.click()
    expect(page.locator("html")).to_have_attribute("data-mantine-color-scheme", "dark")
    page.reload()
    WorkloadsPage(page).expect_loaded()  # and accessible in the dark theme too
    assert shell.color_scheme() == "dark"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_login_never_sends_to_another_site(page: Page, next_path: str) -> None:
    login = LoginPage(page)
    login.open_with_next(next_path)
    login.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/workloads$"))
