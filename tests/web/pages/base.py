from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from web.axe import assert_accessible

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


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
        """docs/screenshots/<name>.png, shown in the README (light theme, 1280x800)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(target), animations="disabled", caret="hide")
        return target

    def mark_page(self) -> None:
        """Leave a mark in the page's window: gone after a reload, so a test can show that
        what it saw came live, without one."""
        self.page.evaluate("() => { window.__notReloaded = true; }")

    def expect_not_reloaded(self) -> None:
        assert self.page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
