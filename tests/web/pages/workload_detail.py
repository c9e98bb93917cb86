from __future__ import annotations

import re

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class WorkloadDetailPage(BasePage):
    """One workload: header, actions, and the Timeline / Logs / Terminal / Files tabs."""

    def open_workload(self, workload_id: str) -> None:
        self.path = f"/workloads/{workload_id}"
        self.open()

    def visit(self, workload_id: str) -> None:
        """Go to a workload's page without expecting it to be there."""
        self.page.goto(f"/workloads/{workload_id}")

    def expect_loaded(self) -> None:
        expect(self.page).to_have_url(re.compile(r"/workloads/[^/]+$"))
        expect(self.status).to_be_visible()
        expect(self.page.get_by_role("tab", name="Timeline")).to_be_visible()
        self.check_accessibility()

    @property
    def heading(self) -> Locator:
        return self.page.get_by_role("main").get_by_role("heading", level=1)

    @property
    def status(self) -> Locator:
        return self.page.get_by_test_id("workload-status").locator("[data-status]")

    @property
    def reason(self) -> Locator:
        """The call-out saying why it does not run (absent while it runs)."""
        return self.page.get_by_test_id("workload-reason")

    @property
    def start(self) -> Locator:
        """Where its start came from: a warm pool, or a cold start."""
        return self.page.get_by_test_id("workload-start")

    @property
    def server(self) -> Locator:
        return self.page.get_by_test_id("workload-server")

    @property
    def gpus(self) -> Locator:
        return self.page.get_by_test_id("workload-gpus")

    @property
    def resources(self) -> Locator:
        return self.page.get_by_test_id("workload-resources")

    @property
    def replicas(self) -> Locator:
        """Where each replica runs (workloads of more than one)."""
        return self.page.get_by_test_id("workload-replicas")

    @property
    def timeline(self) -> Locator:
        return self.page.get_by_test_id("status-timeline")

    def show_tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    @property
    def logs(self) -> Locator:
        return self.page.get_by_test_id("workload-logs")

    @property
    def following(self) -> Locator:
        """The badge saying the logs arrive on an open response (a running container)."""
        return self.page.get_by_test_id("logs-mode").filter(has_text="following")

    # -- actions -----------------------------------------------------------------------
    def open_edit_resources(self) -> Locator:
        self.page.get_by_role("button", name="Edit resources").click()
        dialog = self.page.get_by_role("dialog", name=re.compile("^Edit "))
        expect(dialog).to_be_visible()
        return dialog

    def edit_resources(self, **fields: str | float) -> Locator:
        """Open the dialog, fill `fields` (labels: "CPU cores", "RAM (GB)"...), save."""
        dialog = self.open_edit_resources()
        for label, value in fields.items():
            dialog.get_by_role("textbox", name=label, exact=True).fill(str(value))
        dialog.get_by_role("button", name="Save").click()
        return dialog

    def confirm_dialog(self, title: str | re.Pattern[str]) -> Locator:
        dialog = self.page.get_by_role("dialog", name=title)
        expect(dialog).to_be_visible()
        return dialog

    def stop(self, confirm: bool = True) -> None:
        self.page.get_by_role("button", name="Stop", exact=True).click()
        dialog = self.confirm_dialog(re.compile("^Stop "))
        self.check_accessibility()
        dialog.get_by_role("button", name="Stop workload" if confirm else "Cancel").click()
        expect(dialog).to_have_count(0)

    def delete(self, confirm: bool = True) -> None:
        self.page.get_by_role("button", name="Delete", exact=True).click()
        dialog = self.confirm_dialog(re.compile("^Delete "))
        dialog.get_by_role("button", name="Delete workload" if confirm else "Cancel").click()
        expect(dialog).to_have_count(0)
