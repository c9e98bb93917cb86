from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from web.axe import assert_accessible

ADMIN_NAV = ["Users", "Invites", "Teams", "Audit"]
FLEET_NAV = [
    "Fleet overview",
    "Servers",
    "Clusters",
    "Queue",
    "Fair share",
    "All workloads",
    "Warm pools",
]
WORK_NAV = ["My workloads", "Launch", "Images"]
#: A user's nav: their work, and the one Fleet page open to everyone (their teams' share).
USER_NAV = [*WORK_NAV, "Fair share"]


class AppShell:
    """The header (theme toggle, user menu) and the nav around every logged-in page."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @property
    def nav(self) -> Locator:
        return self.page.get_by_role("navigation", name="Main navigation")

    def nav_labels(self) -> list[str]:
        expect(self.nav.get_by_role("link").first).to_be_visible()
        return [text.strip() for text in self.nav.get_by_role("link").all_inner_texts()]

    def go_to(self, label: str) -> None:
        self.nav.get_by_role("link", name=label, exact=True).click()

    def log_out(self) -> None:
        self.page.get_by_test_id("user-menu").click()
        self.page.get_by_role("menuitem", name="Log out").click()

    @property
    def theme_toggle(self) -> Locator:
        return self.page.get_by_test_id("theme-toggle")

    def color_scheme(self) -> str:
        scheme: str = self.page.evaluate(
            "() => document.documentElement.getAttribute('data-mantine-color-scheme')"
        )
        return scheme

    def expect_not_allowed(self) -> None:
        expect(self.page.get_by_role("heading", name="Not allowed")).to_be_visible()
        assert_accessible(self.page, f"not allowed ({self.page.url})")
