"""Page object of the image catalog page: the catalog, the images on a docker server
(pull, build, push with streamed progress) and the registries."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class ImagesPage(BasePage):
    path = "/images"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Images", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    # The catalog

    @property
    def catalog(self) -> Locator:
        return self.page.get_by_test_id("catalog-table")

    def row(self, name: str) -> Locator:
        return self.catalog.get_by_role("row").filter(
            has=self.page.get_by_role("rowheader", name=name, exact=True)
        )

    @property
    def add_button(self) -> Locator:
        return self.page.get_by_role("button", name="Add image")

    def button(self, action: str, name: str) -> Locator:
        """A row's Launch, Edit or Delete button."""
        return self.page.get_by_role("button", name=f"{action} {name}", exact=True).or_(
            self.page.get_by_role("link", name=f"{action} {name}", exact=True)
        )

    def _fill_form(self, dialog: Locator, fields: dict[str, str | float]) -> None:
        for label, value in fields.items():
            if label == "Description":
                dialog.get_by_label(label).fill(str(value))
            else:
                dialog.get_by_role("textbox", name=label, exact=True).fill(str(value))

    def add(self, fields: dict[str, str | float]) -> None:
        """Add a catalog image; `fields` by their labels (Name, Reference, Type...)."""
        self.add_button.click()
        dialog = self.page.get_by_role("dialog", name="Add an image")
        expect(dialog).to_be_visible()
        self._fill_form(dialog, fields)
        self.check_accessibility()
        dialog.get_by_role("button", name="Add image").click()
        expect(dialog).to_have_count(0)

    def edit(self, name: str, fields: dict[str, str | float]) -> None:
        self.button("Edit", name).click()
        dialog = self.page.get_by_role("dialog", name=f"Edit image {name}")
        expect(dialog).to_be_visible()
        self._fill_form(dialog, fields)
        dialog.get_by_role("button", name="Save image").click()
        expect(dialog).to_have_count(0)

    def delete(self, name: str) -> None:
        self.button("Delete", name).click()
        self.page.get_by_role("dialog").get_by_role("button", name="Delete image").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)  # closed, not fading

    def launch(self, name: str) -> None:
        self.button("Launch", name).click()

    # Images on a docker server

    @property
    def server_images(self) -> Locator:
        return self.page.get_by_role("region", name="Images on a server")

    def choose_server(self, name: str) -> None:
        self.server_images.get_by_role("textbox", name="Docker server").click()
        self.page.get_by_role("option", name=re.compile("^" + re.escape(name))).click()

    def present_image(self, tag: str) -> Locator:
        table = self.server_images.get_by_test_id("server-images-table")
        return table.get_by_role("rowheader", name=tag, exact=True)

    def build(self, tag: str, context: Path) -> None:
        """Build `tag` from a tar of its context (holding the Dockerfile)."""
        section = self.server_images
        section.get_by_role("tab", name="Build").click()
        form = section.get_by_role("form", name="Build an image")
        form.get_by_role("textbox", name="Tag", exact=True).fill(tag)
        with self.page.expect_file_chooser() as chooser:
            form.get_by_role("button", name=re.compile("^Build context")).click()
        chooser.value.set_files(str(context))
        form.get_by_role("button", name="Build", exact=True).click()

    def pull(self, reference: str, registry: str | None = None) -> None:
        section = self.server_images
        section.get_by_role("tab", name="Pull").click()
        form = section.get_by_role("form", name="Pull an image")
        form.get_by_role("textbox", name="Reference to pull").fill(reference)
        if registry is not None:
            form.get_by_role("textbox", name="From registry").click()
            self.page.get_by_role("option", name=re.compile("^" + re.escape(registry))).click()
        form.get_by_role("button", name="Pull", exact=True).click()

    def remove(self, tag: str) -> None:
        """Remove a present image's tag from the server (its row's Remove button)."""
        self.server_images.get_by_role("button", name=f"Remove {tag}", exact=True).click()
        self.page.get_by_role("dialog").get_by_role("button", name="Remove image").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)

    def push(self, tag: str, registry: str) -> None:
        """Push a present image (its row's Push button) to a configured registry."""
        section = self.server_images
        section.get_by_role("button", name=f"Push {tag}", exact=True).click()
        form = section.get_by_role("form", name="Push an image")
        expect(form.get_by_role("textbox", name="Image to push")).to_have_value(tag)
        form.get_by_role("textbox", name="To registry").click()
        self.page.get_by_role("option", name=re.compile("^" + re.escape(registry))).click()
        form.get_by_role("button", name="Push", exact=True).click()

    @property
    def progress(self) -> Locator:
        return self.page.get_by_test_id("image-progress")

    @property
    def progress_lines(self) -> Locator:
        return self.page.get_by_test_id("image-progress-lines")

    # Registries

    @property
    def registries(self) -> Locator:
        return self.page.get_by_role("region", name="Registries")

    def registry_row(self, name: str) -> Locator:
        return (
            self.page.get_by_test_id("registries-table")
            .get_by_role("row")
            .filter(has=self.page.get_by_role("rowheader", name=name, exact=True))
        )

    def add_registry(self, name: str, url: str, username: str, password: str) -> None:
        form = self.registries.get_by_role("form", name="Add a registry")
        form.get_by_role("textbox", name="Registry name").fill(name)
        form.get_by_role("textbox", name="Address").fill(url)
        form.get_by_role("textbox", name="Username").fill(username)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Add registry").click()

    def delete_registry(self, name: str) -> None:
        self.page.get_by_role("button", name=f"Delete registry {name}").click()
        self.page.get_by_role("dialog").get_by_role("button", name="Delete registry").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)
