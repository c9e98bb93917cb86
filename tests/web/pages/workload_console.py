from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, expect

from web.pages.workload_detail import WorkloadDetailPage


class WorkloadConsolePage(WorkloadDetailPage):
    """A workload's detail page, driven through its Terminal and Files tabs."""

    # -- terminal ---------------------------------------------------------------------

    @property
    def terminal(self) -> Locator:
        return self.page.get_by_test_id("terminal")

    @property
    def terminal_status(self) -> Locator:
        return self.page.get_by_test_id("terminal-status")

    @property
    def terminal_error(self) -> Locator:
        """Why there is no terminal (the server's refusal), inside the Terminal tab."""
        return self.page.get_by_role("tabpanel", name="Terminal").get_by_role("alert")

    def open_terminal(self) -> None:
        """Open the Terminal tab and wait until the shell is connected."""
        self.show_tab("Terminal")
        expect(self.terminal_status).to_have_text("Connected", timeout=20_000)
        expect(self.terminal.locator(".xterm-rows")).to_be_visible()

    def wait_for_terminal_text(self, text: str) -> None:
        """Wait until ``text`` shows somewhere in the terminal (a shell's prompt, say)."""
        expect(self.terminal.get_by_role("list")).to_contain_text(text, timeout=15_000)

    def terminal_rows(self) -> list[str]:
        """The terminal's rows as text, from xterm's accessibility tree (screen reader
        mode mirrors every rendered row into it)."""
        return [row.rstrip() for row in self.terminal.get_by_role("listitem").all_inner_texts()]

    def reconnect(self) -> None:
        self.page.get_by_role("button", name="Reconnect").click()
        expect(self.terminal_status).to_have_text("Connected", timeout=20_000)

    def run_in_terminal(self, line: str) -> None:
        """Type ``line`` into the terminal (which has the keyboard focus) and press Enter."""
        self.terminal.click()
        self.page.keyboard.type(line)
        self.page.keyboard.press("Enter")

    def wait_for_terminal_row(self, text: str, timeout_s: float = 15.0) -> list[str]:
        """Wait until one whole row of the terminal reads ``text``; return the rows."""
        deadline = timeout_s * 1000
        waited = 0
        rows = self.terminal_rows()
        while text not in [row.strip() for row in rows]:
            if waited >= deadline:
                raise AssertionError(f"no terminal row reads {text!r}; rows: {rows}")
            self.page.wait_for_timeout(100)
            waited += 100
            rows = self.terminal_rows()
        return rows

    # -- files ------------------------------------------------------------------------

    @property
    def files_table(self) -> Locator:
        return self.page.get_by_role("table", name="Workspace files")

    def open_files(self) -> None:
        self.show_tab("Files")
        expect(self.files_table).to_be_visible()
        expect(self.files_table.get_by_text("Loading…")).to_have_count(0)

    def file_row(self, name: str) -> Locator:
        return self.files_table.get_by_role("row").filter(
            has=self.page.get_by_role("cell", name=name, exact=True)
        )

    @property
    def upload_progress(self) -> Locator:
        return self.page.get_by_role("progressbar")

    def upload(self, file: Path) -> None:
        """Choose ``file`` in the Upload button's file chooser (the upload starts at once)."""
        with self.page.expect_file_chooser() as chooser:
            self.page.get_by_role("button", name="Upload files").click()
        chooser.value.set_files(str(file))

    def cancel_upload(self) -> None:
        self.page.get_by_role("button", name="Cancel upload").click()

    def download(self, name: str) -> bytes:
        with self.page.expect_download() as download:
            self.page.get_by_role("link", name=f"Download {name}").click()
        return Path(download.value.path()).read_bytes()

    def open_folder(self, name: str) -> None:
        self.files_table.get_by_role("button", name=name, exact=True).click()
        expect(self.page.get_by_role("navigation", name="Folder")).to_contain_text(name)

    def go_up(self) -> None:
        self.page.get_by_role("button", name="Up", exact=True).click()

    def refresh_files(self) -> None:
        self.page.get_by_role("button", name="Refresh files").click()

    def delete_file(self, name: str, folder: bool = False) -> None:
        """Delete ``name`` and confirm in the dialog."""
        self.page.get_by_role("button", name=f"Delete {name}").click()
        dialog = self.page.get_by_role("dialog", name=f"Delete {name}?")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Delete folder" if folder else "Delete file").click()
        expect(dialog).to_have_count(0)

    @property
    def files_error(self) -> Locator:
        """What the Files tab says went wrong (not the notifications)."""
        return self.page.get_by_role("tabpanel", name="Files").get_by_role("alert")
