"""The image catalog page in a real browser against a real `gpuyard serve`: an admin adds,
edits and deletes catalog images and registries (the password write-only); a user reads
the catalog but cannot change it, and launches from it with its defaults filled in."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from web.conftest import USER_PASSWORD, LiveServer, unique_email
from web.pages import AppShell, ImagesPage, LaunchPage, LoginPage, WorkloadsPage

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def catalog_entry(live_server: LiveServer, name: str) -> dict[str, Any] | None:
    images: list[dict[str, Any]] = live_server.api("GET", "/images", params={"limit": 1000})["data"]
    return next((i for i in images if i["name"] == name), None)


def log_in_as_new_user(page: Page, live_server: LiveServer, role: str = "user") -> str:
    """Register a user of `role` and log in as them; returns their id."""
    email = unique_email(f"catalog-{role}")
    code = live_server.create_invite(email, role)
    user = live_server.api(
        "POST",
        "/auth/register",
        json={"email": email, "password": USER_PASSWORD, "invite_code": code},
    )
    login = LoginPage(page)
    login.open()
    login.log_in(email, USER_PASSWORD)
    WorkloadsPage(page).expect_loaded()
    user_id: str = user["id"]
    return user_id


def test_an_admin_adds_edits_and_deletes_a_catalog_image(
    admin_page: Page, live_server: LiveServer
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    images = ImagesPage(admin_page)
    images.open()
    images.add(
        {
            "Name": name,
            "Reference": "nginx:1.27",
            "Type": "nginx",
            "Default port": 80,
            "CPU cores": 0.5,
            "RAM (GB)": 0.5,
            "Description": "A static web server",
        }
    )
    row = images.row(name)
    expect(row).to_contain_text("nginx:1.27")
    expect(row).to_contain_text("80")
    expect(row).to_contain_text("0.5 CPU · 0.5 GB RAM")
    expect(row).to_contain_text("A static web server")
    stored = catalog_entry(live_server, name)
    assert stored is not None
    assert (stored["reference"], stored["type"], stored["default_port"]) == (
        "nginx:1.27",
        "nginx",
        80,
    )
    assert (stored["cpu"], stored["ram_gb"]) == (0.5, 0.5)
    images.check_accessibility()
    images.screenshot("images")

    images.edit(name, {"Reference": "nginx:1.28", "Description": "Newer"})
    expect(images.row(name)).to_contain_text("nginx:1.28")
    expect(images.row(name)).to_contain_text("Newer")
    edited = catalog_entry(live_server, name)
    assert edited is not None
    assert (edited["reference"], edited["description"]) == ("nginx:1.28", "Newer")

    images.delete(name)
    expect(images.row(name)).to_have_count(0)
    assert catalog_entry(live_server, name) is None


def test_a_refused_catalog_entry_names_the_field_and_saves_nothing(
    admin_page: Page, live_server: LiveServer
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    live_server.api(
        "POST", "/images", json={"name": name, "reference": "busybox:1", "type": "busybox"}
    )
    images = ImagesPage(admin_page)
    images.open()
    images.add_button.click()
    dialog = admin_page.get_by_role("dialog", name="Add an image")
    dialog.get_by_role("textbox", name="Name", exact=True).fill(name)  # taken: the API says so
    dialog.get_by_role("textbox", name="Reference", exact=True).fill("busybox:2")
    dialog.get_by_role("textbox", name="Type", exact=True).fill("Not A Slug")  # the form says so
    dialog.get_by_role("button", name="Add image").click()
    type_field = dialog.get_by_role("textbox", name="Type", exact=True)
    expect(type_field).to_have_attribute("aria-invalid", "true")
    type_field.fill("busybox")
    dialog.get_by_role("button", name="Add image").click()
    # The API's 409 names the field: shown on it, not as a general refusal.
    name_field = dialog.get_by_role("textbox", name="Name", exact=True)
    expect(name_field).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_contain_text("taken")
    expect(dialog).to_be_visible()  # not closed: nothing was added
    images.check_accessibility()
    same = [
        i
        for i in live_server.api("GET", "/images", params={"limit": 1000})["data"]
        if i["name"] == name
    ]
    assert [i["reference"] for i in same] == ["busybox:1"]


def test_a_user_reads_the_catalog_and_launches_from_it_but_cannot_change_it(
    page: Page, live_server: LiveServer
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    reference = f"web16/tool-{uuid.uuid4().hex[:6]}:1"
    live_server.api(
        "POST",
        "/images",
        json={
            "name": name,
            "reference": reference,
            "type": "python",
            "default_port": 8888,
            "cpu": 1.5,
            "ram_gb": 3,
            "description": "Notebook",
            "files_path": "/srv/notebooks",
        },
    )
    user_id = log_in_as_new_user(page, live_server)
    AppShell(page).go_to("Images")
    images = ImagesPage(page)
    images.expect_loaded()
    expect(images.row(name)).to_contain_text(reference)
    expect(images.row(name)).to_contain_text("1.5 CPU · 3 GB RAM")
    # Read-only: no add, edit or delete; no servers' images, no registries.
    expect(images.add_button).to_have_count(0)
    expect(images.button("Edit", name)).to_have_count(0)
    expect(images.button("Delete", name)).to_have_count(0)
    expect(images.server_images).to_have_count(0)
    expect(images.registries).to_have_count(0)
    page.goto("/pools")
    AppShell(page).expect_not_allowed()
    page.go_back()
    images.expect_loaded()

    images.launch(name)
    launch = LaunchPage(page)
    launch.expect_loaded()
    expect(launch.field("Image")).to_have_value(reference)
    expect(launch.field("CPU cores")).to_have_value("1.5")
    expect(launch.field("RAM (GB)")).to_have_value("3")
    expect(launch.field("Files path")).to_have_value("/srv/notebooks")
    launch.fill("Name", f"from-catalog-{uuid.uuid4().hex[:6]}")
    launch.submit()
    expect(page).to_have_url(re.compile(r"/workloads/[^/]+$"))
    workload_id = page.url.rsplit("/", 1)[1]
    workload = live_server.api("GET", f"/workloads/{workload_id}")
    assert workload["owner_id"] == user_id
    assert workload["image"] == reference
    assert (workload["cpu"], workload["ram_gb"]) == (1.5, 3)
    assert [p["container_port"] for p in workload["ports"]] == [8888]
    assert workload["files_path"] == "/srv/notebooks"
    assert workload["from_pool"] is False
    live_server.api("DELETE", f"/workloads/{workload_id}")


def test_an_admin_adds_a_registry_whose_password_is_never_shown(
    admin_page: Page, live_server: LiveServer
) -> None:
    name = f"reg-{uuid.uuid4().hex[:8]}"
    password = f"secret-{uuid.uuid4().hex}"
    images = ImagesPage(admin_page)
    images.open()
    images.add_registry(name, "127.0.0.1:5999", "pusher", password)
    row = images.registry_row(name)
    expect(row).to_contain_text("127.0.0.1:5999")
    expect(row).to_contain_text("pusher")
    expect(row).to_contain_text("set")
    expect(admin_page.get_by_text(password)).to_have_count(0)
    assert password not in admin_page.content()
    listed = live_server.api("GET", "/registries")["data"]
    [stored] = [r for r in listed if r["name"] == name]
    assert stored["has_password"] is True
    assert password not in str(stored)
    images.check_accessibility()

    images.delete_registry(name)
    expect(images.registry_row(name)).to_have_count(0)
    assert name not in {r["name"] for r in live_server.api("GET", "/registries")["data"]}


def test_an_operator_keeps_the_catalog_and_sees_registries_without_managing_them(
    page: Page, live_server: LiveServer
) -> None:
    registry = f"reg-{uuid.uuid4().hex[:8]}"
    live_server.api("POST", "/registries", json={"name": registry, "url": "127.0.0.1:5998"})
    log_in_as_new_user(page, live_server, role="operator")
    shell = AppShell(page)
    assert "Warm pools" in shell.nav_labels()
    assert "Users" not in shell.nav_labels()
    shell.go_to("Images")
    images = ImagesPage(page)
    images.expect_loaded()
    expect(images.add_button).to_be_visible()
    expect(images.server_images).to_be_visible()
    expect(images.registry_row(registry)).to_contain_text("127.0.0.1:5998")
    # Registries are the admins' to add and delete.
    expect(images.registries.get_by_role("form", name="Add a registry")).to_have_count(0)
    expect(page.get_by_role("button", name=f"Delete registry {registry}")).to_have_count(0)

    name = f"web-{uuid.uuid4().hex[:8]}"
    images.add({"Name": name, "Reference": "python:3.12", "Type": "python"})
    expect(images.row(name)).to_contain_text("python:3.12")
    assert catalog_entry(live_server, name) is not None
