from __future__ import annotations

import re

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class LaunchPage(BasePage):
    """The launch form: image, resources with what is free now, GPU model, priority, env,
    ports, duration."""

    path = "/launch"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Launch a workload", level=1)).to_be_visible()
        # The free-now hints are read from the fleet overview.
        expect(self.field("CPU cores")).to_have_accessible_description(re.compile("Free now"))
        self.check_accessibility()

    def field(self, label: str) -> Locator:
        return self.page.get_by_role("textbox", name=label, exact=True)

    def fill(self, label: str, value: str | float) -> None:
        self.field(label).fill(str(value))

    def choose(self, label: str, option: str) -> None:
        """Pick `option` (its label, or the start of it) in the select labelled `label`."""
        self.field(label).click()
        self.page.get_by_role("option", name=re.compile("^" + re.escape(option))).click()
        expect(self.page.get_by_role("listbox")).to_have_count(0)

    def choose_catalog_image(self, name: str) -> None:
        """Pick a catalog image: its reference, port and default resources fill the form."""
        self.choose("From the catalog", name)

    def add_env(self, name: str, value: str) -> None:
        self.page.get_by_role("button", name="Add variable").click()
        rows = self.page.get_by_role("group", name="Environment variables")
        index = rows.get_by_role("textbox", name=re.compile("^Name of variable")).count()
        self.fill(f"Name of variable {index}", name)
        self.fill(f"Value of variable {index}", value)

    def add_port(self, port: int) -> None:
        self.field("Ports").fill(str(port))
        self.field("Ports").press("Enter")

    def set_preemptible(self, preemptible: bool) -> None:
        self.page.get_by_role("checkbox", name=re.compile("^Preemptible")).set_checked(preemptible)

    def expect_hint(self, label: str, text: str | re.Pattern[str]) -> None:
        """The field's description (what is free now) says `text`."""
        pattern = text if isinstance(text, re.Pattern) else re.compile(re.escape(text))
        expect(self.field(label)).to_have_accessible_description(pattern)

    def expect_field_error(self, label: str, text: str) -> None:
        field = self.field(label)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile(re.escape(text)))

    @property
    def not_free_now(self) -> Locator:
        return self.page.get_by_test_id("not-free-now")

    @property
    def refusal(self) -> Locator:
        return self.page.get_by_role("alert").filter(has_text="The workload was not launched")

    def submit(self) -> None:
        self.page.get_by_role("button", name="Launch", exact=True).click()
