from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class RegisterPage(BasePage):
    path = "/register"

    def open_with_code(self, invite_code: str) -> None:
        """The link an invite gives: /register?code=..."""
        self.page.goto(f"{self.path}?code={quote(invite_code)}")
        self.expect_loaded()

    @property
    def invite_code(self) -> Locator:
        return self.page.get_by_label("Invite code")

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Create an account")).to_be_visible()
        self.check_accessibility()

    @property
    def error(self) -> Locator:
        return self.page.get_by_test_id("register-error")

    def register(
        self, invite_code: str | None, email: str, password: str, username: str | None = None
    ) -> None:
        """Fill the form and submit; ``invite_code=None`` keeps the prefilled one."""
        if invite_code is not None:
            self.invite_code.fill(invite_code)
        self.page.get_by_label("Email").fill(email)
        if username:
            self.page.get_by_label("Username (optional)").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Create account").click()
