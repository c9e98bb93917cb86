from __future__ import annotations

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class WorkloadsPage(BasePage):
    """My workloads: the table of the caller's own workloads."""

    path = "/workloads"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="My workloads", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    @property
    def table(self) -> Locator:
        return self.page.get_by_role("region", name="My workloads").get_by_role("table")

    def row(self, workload_name: str) -> Locator:
        return self.table.get_by_role("row").filter(
            has=self.page.get_by_role("link", name=workload_name, exact=True)
        )

    def cell(self, workload_name: str, column: str) -> Locator:
        headers = [h.strip() for h in self.table.get_by_role("columnheader").all_inner_texts()]
        return self.row(workload_name).get_by_role("cell").nth(headers.index(column))

    @property
    def count_text(self) -> Locator:
        return self.page.get_by_test_id("workload-count")

    def rendered_row_indices(self) -> list[int]:
        """Indices of the data rows in the DOM (the table is virtualised)."""
        values = self.table.locator("tbody tr[data-index]").evaluate_all(
            "rows => rows.map((row) => Number(row.dataset.index))"
        )
        return sorted(int(v) for v in values)

    def scroll_to_bottom(self) -> None:
        self.page.get_by_role("region", name="My workloads").evaluate(
            "(region) => { region.scrollTop = region.scrollHeight; }"
        )

    def refresh(self) -> None:
        self.page.get_by_role("button", name="Refresh").click()

    def open_row(self, workload_name: str) -> None:
        """Click the row (not its link): it opens the workload's page."""
        self.cell(workload_name, "Age").click()

    def row_action(self, workload_name: str, action: str) -> None:
        """Pick `action` ("Stop", "Delete") in the row's menu; the confirmation opens."""
        self.row(workload_name).get_by_role("button", name=f"Actions for {workload_name}").click()
        self.page.get_by_role("menuitem", name=action).click()
