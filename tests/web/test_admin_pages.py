"""The admin pages in a real browser against a real `gpuyard serve`: invites (and a
registration with the code the page showed), users, teams and quotas, the audit log."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, LiveServer, unique_email
from web.pages import (
    AppShell,
    AuditPage,
    InvitesPage,
    LoginPage,
    RegisterPage,
    TeamsPage,
    UsersPage,
    WorkloadsPage,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_an_admin_invites_in_the_ui_and_the_new_user_registers_with_the_code(
    admin_page: Page, live_server: LiveServer
) -> None:
    page = admin_page
    email = unique_email("invited")
    invites = InvitesPage(page)
    invites.open()
    code = invites.create(email)
    assert code
    expect(invites.copy_button).to_be_visible()
    expect(invites.row(email)).to_contain_text("pending")
    invites.check_accessibility()
    invites.screenshot("invites")

    AppShell(page).log_out()
    LoginPage(page).expect_loaded()
    register = RegisterPage(page)
    register.open()
    register.register(code, email, USER_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    expect(page).to_have_url(re.compile(r"/workloads$"))

    accounts = live_server.api("GET", "/users", params={"limit": 1000})["data"]
    assert email in {a["email"] for a in accounts}
    AppShell(page).log_out()
    login = LoginPage(page)
    login.expect_loaded()
    login.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    invites.open()
    expect(invites.row(email)).to_contain_text("used")


def test_a_revoked_invite_no_longer_works(admin_page: Page, live_server: LiveServer) -> None:
    email = unique_email("revoked")
    code = live_server.create_invite(email)
    invites = InvitesPage(admin_page)
    invites.open()
    invites.revoke(email)
    expect(invites.row(email)).to_have_count(0)
    listed = live_server.api("GET", "/invites", params={"status": "pending"})["data"]
    assert email not in {i["email"] for i in listed}
    AppShell(admin_page).log_out()
    register = RegisterPage(admin_page)
    register.open()
    register.register(code, email, USER_PASSWORD)
    expect(register.error).to_be_visible()


def test_an_admin_changes_a_role_disables_and_deletes_a_user(
    admin_page: Page, live_server: LiveServer
) -> None:
    email = unique_email("managed")
    code = live_server.create_invite(email)
    user = live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    live_server.login_token(email, USER_PASSWORD)  # a last login to show

    users = UsersPage(admin_page)
    users.open()
    expect(users.row(email)).not_to_contain_text("never")
    users.set_role(email, "operator")
    expect(users.role_of(email)).to_have_value("operator")
    assert live_server.api("GET", f"/users/{user['id']}")["role"] == "operator"

    users.toggle_active(email)
    expect(users.row(email)).to_contain_text("disabled")
    assert live_server.api("GET", f"/users/{user['id']}")["is_active"] is False
    users.check_accessibility()
    users.screenshot("users")

    users.delete(email)
    expect(users.row(email)).to_have_count(0)
    remaining = live_server.api("GET", "/users", params={"limit": 1000})["data"]
    assert email not in {u["email"] for u in remaining}


def test_teams_are_created_with_quotas_and_members(
    admin_page: Page, live_server: LiveServer
) -> None:
    email = unique_email("member")
    code = live_server.create_invite(email)
    live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    name = f"team-{uuid.uuid4().hex[:8]}"
    teams = TeamsPage(admin_page)
    teams.open()
    teams.create(name, gpu_quota=4)
    expect(teams.row(name)).to_contain_text("4")

    dialog = teams.edit(name)
    teams.save_quota(dialog, gpu=8)
    expect(teams.row(name)).to_contain_text("8")
    teams.add_member(dialog, email)
    expect(dialog.get_by_role("row").filter(has_text=email)).to_be_visible()
    expect(teams.row(name).get_by_role("cell").first).to_have_text("1")
    teams.check_accessibility()
    team = next(t for t in live_server.api("GET", "/teams")["data"] if t["name"] == name)
    assert team["quota"]["gpu"] == 8
    assert [m["email"] for m in team["members"]] == [email]

    dialog.get_by_role("button", name=f"Remove {email} from {name}").click()
    expect(dialog.get_by_role("row").filter(has_text=email)).to_have_count(0)


def test_the_audit_log_shows_the_chain_intact_and_filters(
    admin_page: Page, live_server: LiveServer
) -> None:
    suffix = uuid.uuid4().hex[:8]
    live_server.api("POST", "/clusters", json={"name": f"audited-{suffix}", "kind": "simulated"})
    audit = AuditPage(admin_page)
    audit.open()
    expect(audit.verification).to_have_attribute("data-intact", "true")
    expect(audit.verification).to_contain_text("Audit chain intact")
    checked = live_server.api("GET", "/audit/verify")["checked"]
    assert checked > 0

    rows = audit.table.locator("tbody tr[data-index]")
    expect(rows.filter(has_not_text="cluster.create").first).to_be_visible()  # logins...
    audit.filter_action("cluster.create")
    expect(rows.filter(has_not_text="cluster.create")).to_have_count(0)
    expect(rows.filter(has_text=f"audited-{suffix}")).to_have_count(1)
    for action in rows.locator("td:nth-child(3)").all_inner_texts():
        assert action.strip() == "cluster.create"
    audit.check_accessibility()
    audit.screenshot("audit")

    # The demo cluster was created by the system, this one by the admin.
    expect(rows.filter(has_text='"name":"demo"')).to_have_count(1)
    audit.filter_actor(ADMIN_EMAIL)
    expect(rows.filter(has_text='"name":"demo"')).to_have_count(0)
    expect(rows.filter(has_not_text=ADMIN_EMAIL)).to_have_count(0)
    expect(rows.filter(has_text=f"audited-{suffix}")).to_have_count(1)
