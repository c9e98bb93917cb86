from __future__ import annotations

import re
from urllib.parse import quote

from playwright.sync_api import Locator, expect

from web.pages.base import BasePage


class LoginPage(BasePage):
    path = "/login"

    def open_with_next(self, next_path: str) -> None:
        self.page.goto(f"{self.path}?next={quote(next_path)}")
        self.expect_loaded()

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Log in")).to_be_visible()
        expect(self.page).to_have_url(re.compile(r"/login(\?|$)"))
        self.check_accessibility()

    @property
    def email(self) -> Locator:
        return self.page.get_by_label("Email")

    @property
    def password(self) -> Locator:
        return self.page.get_by_label("Password")

    @property
    def error(self) -> Locator:
        return self.page.get_by_test_id("login-error")

    def log_in(self, email: str, password: str) -> None:
        self.email.fill(email)
        self.password.fill(password)
        self.page.get_by_role("button", name="Log in").click()

    def go_to_register(self) -> None:
        self.page.get_by_role("link", name="Create an account").click()
