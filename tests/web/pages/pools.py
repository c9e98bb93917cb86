"""Page object of the warm pools page: each pool's status and warm containers, and the
admin operations (create, resize, reinitialise, release, delete)."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class PoolsPage(BasePage):
    path = "/pools"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Warm pools", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    def pool(self, name: str) -> Locator:
        return self.page.get_by_role("region", name=name, exact=True)

    def count(self, name: str, which: str) -> Locator:
        """One of the pool's figures: target, available, warming, assigned, failed."""
        return self.pool(name).get_by_test_id(f"pool-{which}")

    def members(self, name: str) -> Locator:
        return self.pool(name).get_by_role("table", name=f"Warm containers of {name}")

    def member_rows(self, name: str, state: str | None = None) -> Locator:
        selector = "tbody tr" if state is None else f"tbody tr[data-state='{state}']"
        return self.members(name).locator(selector)

    def _choose(self, scope: Locator, label: str, option: str) -> None:
        scope.get_by_role("textbox", name=label, exact=True).click()
        self.page.get_by_role("option", name=re.compile("^" + re.escape(option))).click()

    def create(
        self,
        name: str,
        catalog_image: str,
        cluster: str,
        target_size: int,
        ports: tuple[int, int],
    ) -> None:
        """A pool of a catalog image (its type, reference, port and resources) anywhere
        in `cluster`."""
        self.page.get_by_role("button", name="New pool").click()
        dialog = self.page.get_by_role("dialog", name="New warm pool")
        expect(dialog).to_be_visible()
        self._choose(dialog, "From the catalog", catalog_image)
        dialog.get_by_role("textbox", name="Pool name").fill(name)
        self._choose(dialog, "Cluster", cluster)
        dialog.get_by_role("textbox", name="Target size").fill(str(target_size))
        dialog.get_by_role("textbox", name="First host port").fill(str(ports[0]))
        dialog.get_by_role("textbox", name="Last host port").fill(str(ports[1]))
        self.check_accessibility()
        dialog.get_by_role("button", name="Create pool").click()
        expect(dialog).to_have_count(0)

    def resize(self, name: str, size: int) -> None:
        form = self.pool(name).get_by_role("form", name=f"Resize {name}")
        form.get_by_role("textbox", name=f"Target size of {name}").fill(str(size))
        form.get_by_role("button", name="Resize").click()

    def release(self, container_name: str) -> None:
        self.page.get_by_role("button", name=f"Release {container_name}").click()
        self.page.get_by_role("dialog").get_by_role("button", name="Release to pool").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)

    def delete(self, name: str) -> None:
        self.page.get_by_role("button", name=f"Delete {name}", exact=True).click()
        self.page.get_by_role("dialog").get_by_role("button", name="Delete pool").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)
