"""The server page's Terminal button against a real sshd (tests/support/sshd.py): a
shell on the host over SSH in the browser's xterm.js, through the control plane; a server
without SSH settings says why there is no terminal."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from support.sshd import SshServer

from gpuyard.runtimes.host_ssh import generate_key
from web.conftest import LiveServer
from web.pages import ServerDetailPage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def test_the_terminal_button_opens_a_shell_on_the_host(
    admin_page: Page, live_server: LiveServer, sshd: SshServer
) -> None:
    private, facts = generate_key()
    sshd.authorize(facts.public_key)
    servers = live_server.api("GET", "/servers")["data"]
    with_ssh, without = servers[0], servers[1]
    live_server.api(
        "PUT",
        f"/servers/{with_ssh['id']}/ssh",
        json={
            "host": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.user,
            "private_key": private,
        },
    )

    detail = ServerDetailPage(admin_page, with_ssh["id"])
    detail.open()
    dialog = detail.open_host_terminal()
    expect(dialog.get_by_test_id("terminal-status")).to_have_text("Connected")
    expect(dialog).to_contain_text(f"Terminal on {with_ssh['name']}")
    detail.type_in_terminal(dialog, "echo host-says-$((6*7))")
    # A row that reads the output alone: the typed command's echo reads "echo ...".
    expect(
        dialog.get_by_test_id("terminal").get_by_role("listitem").filter(has_text="host-says-42")
    ).not_to_have_count(0, timeout=15_000)
    rows = dialog.get_by_test_id("terminal").get_by_role("listitem").all_inner_texts()
    assert "host-says-42" in [row.strip() for row in rows]
    detail.check_accessibility()
    detail.type_in_terminal(dialog, "exit 4")
    expect(dialog).to_contain_text("The shell exited with code 4.")
    pinned = live_server.api("GET", f"/servers/{with_ssh['id']}/ssh")["host_key"]
    assert pinned is not None  # the browser's session pinned the host key
    dialog.get_by_role("button", name="Close").click()

    other = ServerDetailPage(admin_page, without["id"])
    other.open()
    refused = other.open_host_terminal()
    expect(refused.get_by_role("alert")).to_contain_text("no SSH settings")
    expect(refused.get_by_test_id("terminal-status")).to_have_text("Disconnected")
