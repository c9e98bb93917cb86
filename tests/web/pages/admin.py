"""Page objects of the admin pages: users, invites, teams and the audit log."""

from __future__ import annotations

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class UsersPage(BasePage):
    path = "/admin/users"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Users", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    @property
    def table(self) -> Locator:
        return self.page.get_by_role("region", name="Users").get_by_role("table")

    def row(self, email: str) -> Locator:
        return self.table.get_by_role("row").filter(
            has=self.page.get_by_role("cell", name=email, exact=True)
        )

    def role_of(self, email: str) -> Locator:
        return self.page.get_by_role("textbox", name=f"Role of {email}")

    def set_role(self, email: str, role: str) -> None:
        self.role_of(email).click()
        self.page.get_by_role("option", name=role, exact=True).click()

    def toggle_active(self, email: str) -> None:
        self.row(email).get_by_role("button", name=f"able {email}").click()

    def delete(self, email: str) -> None:
        self.page.get_by_role("button", name=f"Delete {email}").click()
        self.page.get_by_role("dialog").get_by_role("button", name="Delete user").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)  # closed, not fading


class InvitesPage(BasePage):
    path = "/admin/invites"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Invites", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    def create(self, email: str, role: str = "user") -> str:
        """Create an invite; returns the code the page shows once."""
        self.page.get_by_label("Email").fill(email)
        if role != "user":
            self.page.get_by_role("textbox", name="Role").click()
            self.page.get_by_role("option", name=role, exact=True).click()
        self.page.get_by_role("button", name="Create invite").click()
        code = self.page.get_by_test_id("invite-code")
        expect(code).to_be_visible()
        return code.inner_text().strip()

    @property
    def copy_button(self) -> Locator:
        return self.page.get_by_role("button", name="Copy code")

    def row(self, email: str) -> Locator:
        return self.page.get_by_test_id("invites-table").get_by_role("row").filter(has_text=email)

    def revoke(self, email: str) -> None:
        self.page.get_by_role("button", name=f"Revoke invite for {email}").click()
        self.page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)  # closed, not fading


class TeamsPage(BasePage):
    path = "/admin/teams"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Teams", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    def row(self, name: str) -> Locator:
        return (
            self.page.get_by_test_id("teams-table")
            .get_by_role("row")
            .filter(has=self.page.get_by_role("rowheader", name=name, exact=True))
        )

    def create(self, name: str, gpu_quota: int | None = None) -> None:
        form = self.page.get_by_role("region", name="New team")
        form.get_by_label("Team name").fill(name)
        if gpu_quota is not None:
            form.get_by_label("GPU quota (devices)").fill(str(gpu_quota))
        form.get_by_role("button", name="Create team").click()

    def edit(self, name: str) -> Locator:
        self.page.get_by_role("button", name=f"Edit {name}").click()
        dialog = self.page.get_by_role("dialog", name=f"Team {name}")
        expect(dialog).to_be_visible()
        return dialog

    def save_quota(self, dialog: Locator, gpu: int) -> None:
        dialog.get_by_label("GPU quota (devices)").fill(str(gpu))
        dialog.get_by_role("button", name="Save quotas").click()
        expect(dialog.get_by_text("Saved.")).to_be_visible()

    def add_member(self, dialog: Locator, email: str) -> None:
        dialog.get_by_role("textbox", name="Add member").fill(email)
        self.page.get_by_role("option", name=email, exact=True).click()
        dialog.get_by_role("button", name="Add", exact=True).click()


class AuditPage(BasePage):
    path = "/admin/audit"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
        expect(self.verification).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    @property
    def verification(self) -> Locator:
        return self.page.get_by_test_id("audit-verification")

    @property
    def table(self) -> Locator:
        return self.page.get_by_role("region", name="Audit events").get_by_role("table")

    def filter_action(self, action: str) -> None:
        self.page.get_by_label("Action").fill(action)

    def filter_actor(self, actor: str) -> None:
        self.page.get_by_label("Actor (email or id)").fill(actor)
