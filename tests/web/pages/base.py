from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from web.axe import assert_accessible

_ROOT = Path(__file__).resolve().parents[3]
# `make screenshots` points this at docs/screenshots (the README's pictures); a plain test
# run writes to an ignored folder, so `make test` leaves the checkout as it found it.
SCREENSHOTS = _ROOT / os.environ.get("GPUYARD_SCREENSHOTS_DIR", "tests/web/.screenshots")


class BasePage:
    """What every page object has: the page, its path, the a11y check, screenshots."""

    path = "/"

    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> None:
        self.page.goto(self.path)
        self.expect_loaded()

    def expect_loaded(self) -> None:
        """Wait until the page shows its content, then check its accessibility."""
        raise NotImplementedError

    def check_accessibility(self) -> None:
        assert_accessible(self.page, f"{type(self).__name__} ({self.page.url})")

    def screenshot(self, name: str) -> Path:
        """<name>.png in SCREENSHOTS (light theme, 1280x800); docs/screenshots holds the
        README's, refreshed by `make screenshots`."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(target), animations="disabled", caret="hide")
        return target

    def expect_live(self) -> None:
        """The live stream (GET /api/v1/stream) is open: later changes reach the page."""
        expect(self.page.locator("html")).to_have_attribute("data-live", "open")

    def mark_page(self) -> None:
        """Wait for the live stream, then leave a mark in the page's window: gone after a
        reload, so a test can show that what it saw next came live, without one."""
        self.expect_live()
        self.page.evaluate("() => { window.__notReloaded = true; }")

    def expect_not_reloaded(self) -> None:
        assert self.page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
