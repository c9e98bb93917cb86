"""A workload's Terminal and Files tabs against a real container: a busybox workload on
the docker cluster of the tests' `gpuyard serve` (one real agent over the session's
dockerd: web/docker_cluster.py)."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from integration.cluster import wait_for
from playwright.sync_api import Page, expect

from web.conftest import LiveServer
from web.docker_cluster import DockerCluster, launch, wait_running
from web.pages import WorkloadConsolePage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def shell(live_server: LiveServer, docker_cluster: DockerCluster) -> dict[str, Any]:
    """A busybox workload, running in a container."""
    workload = launch(live_server, docker_cluster, f"shell-{uuid.uuid4().hex[:6]}")
    running: dict[str, Any] = wait_running(live_server, workload["id"])
    return running


def _console(page: Page, workload_id: str) -> WorkloadConsolePage:
    """``page`` (logged in as the admin, who owns the workloads) on the workload's page."""
    console = WorkloadConsolePage(page)
    console.open_workload(workload_id)
    return console


def _container_file(cluster: DockerCluster, workload: dict[str, Any], path: str) -> bytes | None:
    result = cluster.container(workload["id"]).exec_run(["cat", path])
    assert isinstance(result.output, bytes)  # not streamed: the whole output
    return result.output if result.exit_code == 0 else None


def test_the_terminal_runs_echo_in_the_container_and_follows_resizes(
    admin_page: Page, shell: dict[str, Any]
) -> None:
    page = admin_page
    console = _console(page, shell["id"])
    console.open_terminal()
    expect(page.get_by_role("textbox", name="Terminal input")).to_be_focused()  # at once

    console.wait_for_terminal_text("/ # ")  # busybox sh's prompt: the shell reads input now
    console.run_in_terminal("echo hello-from-xterm")
    # A row that reads the output alone: the typed command's echo reads "... echo ...".
    console.wait_for_terminal_row("hello-from-xterm")
    console.check_accessibility()
    page.evaluate("window.scrollTo(0, 0)")  # focusing the terminal scrolled it into view
    console.screenshot("workload-terminal")

    # The pty follows the panel: `stty size` in the shell says the rows the terminal shows.
    def pty_size(marker: str) -> tuple[int, int]:
        console.run_in_terminal(f"echo {marker} $(stty size)")
        pattern = re.compile(rf"^{marker} (\d+) (\d+)$")
        found: list[tuple[int, int, int]] = []

        def measured() -> bool:
            rows = console.terminal_rows()
            matches = [m for row in rows if (m := pattern.match(row.strip()))]
            found[:] = [(int(m[1]), int(m[2]), len(rows)) for m in matches]
            return bool(found)

        wait_for(measured, timeout=10, what=f"the output of `stty size` ({marker})")
        pty_rows, pty_cols, shown_rows = found[-1]
        assert pty_rows == shown_rows
        return pty_rows, pty_cols

    rows, cols = pty_size("wide")
    page.set_viewport_size({"width": 900, "height": 640})
    expect(console.terminal).to_be_visible()
    page.wait_for_timeout(300)  # the ResizeObserver refits on the next frame
    narrower_rows, narrower_cols = pty_size("narrow")
    assert narrower_cols < cols, (cols, narrower_cols)
    assert narrower_rows == rows  # the panel's height is fixed

    terminal_input = page.get_by_role("textbox", name="Terminal input")
    expect(terminal_input).to_be_focused()
    page.keyboard.press("Tab")  # Tab is the shell's (completion)
    expect(terminal_input).to_be_focused()
    page.keyboard.press("Shift+Tab")  # the keyboard is not trapped in the terminal...
    expect(terminal_input).not_to_be_focused()
    console.run_in_terminal("exit")  # ...and the shell got no back-tab sequence: this runs
    expect(console.terminal_status).to_have_text("Disconnected")
    expect(page.get_by_role("status").filter(has_text="exited with code 0")).to_be_visible()
    console.reconnect()  # a new shell in the same container
    console.wait_for_terminal_text("/ # ")
    console.run_in_terminal("echo again-$((6 * 7))")
    console.wait_for_terminal_row("again-42")


def test_the_terminal_says_why_the_server_refused_it(
    admin_page: Page, live_server: LiveServer, docker_cluster: DockerCluster
) -> None:
    # A gang of two replicas each asking for all of the cluster's one host: accepted (one
    # replica fits an empty host), yet it stays pending, with no container to exec into.
    # The lowest priority: nothing is worth preempting for it.
    (host,) = live_server.api("GET", "/servers", params={"cluster_id": docker_cluster.id})["data"]
    name = f"pending-{uuid.uuid4().hex[:6]}"
    pending = launch(
        live_server,
        docker_cluster,
        name,
        cpu=host["capacity"]["cpu"],
        replicas=2,
        gang=True,
        priority=1,
    )
    console = _console(admin_page, pending["id"])
    console.show_tab("Terminal")
    expect(console.terminal_status).to_have_text("Disconnected")
    expect(console.terminal_error).to_contain_text("(409)")
    console.check_accessibility()


def test_a_file_is_uploaded_with_progress_listed_downloaded_and_deleted(
    admin_page: Page,
    live_server: LiveServer,
    docker_cluster: DockerCluster,
    shell: dict[str, Any],
    tmp_path: Path,
) -> None:
    page = admin_page
    name = f"data-{uuid.uuid4().hex[:6]}.bin"
    content = os.urandom(768 * 1024)
    source = tmp_path / name
    source.write_bytes(content)

    console = _console(page, shell["id"])
    console.open_files()
    expect(console.file_row(name)).to_have_count(0)

    # Throttle uploads (Chromium's network emulation) so that the progress bar is seen.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": 256 * 1024})
    console.upload(source)
    expect(console.upload_progress).to_be_visible()
    expect(page.get_by_text(re.compile(rf"Uploading {re.escape(name)}: \d+%"))).to_be_visible()
    console.check_accessibility()
    expect(console.upload_progress).to_have_count(0, timeout=20_000)
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})

    expect(page.get_by_role("status").filter(has_text=f"Uploaded {name}.")).to_be_visible()
    row = console.file_row(name)
    expect(row).to_be_visible()
    expect(row).to_contain_text("768.0 KiB")
    assert _container_file(docker_cluster, shell, f"/workspace/{name}") == content
    console.screenshot("workload-files")

    assert console.download(name) == content

    console.delete_file(name)
    expect(console.file_row(name)).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text=f"Deleted {name}.")).to_be_visible()
    listing = live_server.api("GET", f"/workloads/{shell['id']}/files")
    assert name not in [entry["name"] for entry in listing["data"]]
    assert _container_file(docker_cluster, shell, f"/workspace/{name}") is None


def test_folders_are_browsed_names_are_encoded_and_the_api_refusals_shown(
    admin_page: Page,
    live_server: LiveServer,
    docker_cluster: DockerCluster,
    shell: dict[str, Any],
    tmp_path: Path,
) -> None:
    page = admin_page
    folder = f"models-{uuid.uuid4().hex[:6]}"
    docker_cluster.container(shell["id"]).exec_run(["mkdir", "-p", f"/workspace/{folder}"])
    # A name that must be encoded in the URL (space, '#', '?', '%', non-ASCII).
    weights = "weights #1 ?50% ü.txt"
    source = tmp_path / weights
    source.write_bytes(b"not really weights\n")

    console = _console(page, shell["id"])
    console.open_files()
    console.open_folder(folder)
    console.upload(source)
    expect(console.file_row(weights)).to_be_visible()
    assert (
        _container_file(docker_cluster, shell, f"/workspace/{folder}/{weights}")
        == source.read_bytes()
    )
    assert console.download(weights) == source.read_bytes()

    console.go_up()
    expect(console.file_row(folder)).to_be_visible()
    console.delete_file(folder, folder=True)  # not empty: the agent refuses, the page says why
    expect(console.files_error).to_contain_text("not empty")
    expect(console.file_row(folder)).to_be_visible()
    console.check_accessibility()

    console.open_folder(folder)
    console.delete_file(weights)
    expect(console.file_row(weights)).to_have_count(0)
    console.go_up()
    console.delete_file(folder, folder=True)  # empty now
    expect(console.file_row(folder)).to_have_count(0)
    expect(console.files_error).to_have_count(0)
    assert _container_file(docker_cluster, shell, f"/workspace/{folder}/{weights}") is None


def test_a_cancelled_upload_leaves_nothing_behind(
    admin_page: Page,
    live_server: LiveServer,
    docker_cluster: DockerCluster,
    shell: dict[str, Any],
    tmp_path: Path,
) -> None:
    page = admin_page
    name = f"big-{uuid.uuid4().hex[:6]}.bin"
    source = tmp_path / name
    source.write_bytes(os.urandom(2 * 1024 * 1024))
    console = _console(page, shell["id"])
    console.open_files()

    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 64 * 1024},
    )
    console.upload(source)
    expect(console.upload_progress).to_be_visible()
    console.cancel_upload()
    expect(page.get_by_role("status").filter(has_text="Upload cancelled.")).to_be_visible()
    expect(console.upload_progress).to_have_count(0)
    expect(console.files_error).to_have_count(0)

    console.refresh_files()
    expect(console.file_row(name)).to_have_count(0)
    assert _container_file(docker_cluster, shell, f"/workspace/{name}") is None
