"""Page objects of the operators' pages: fleet overview, servers, server detail,
clusters, queue and all workloads."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from web.pages.base import BasePage


class _TablePage(BasePage):
    """A page whose main content is one (virtualised) table in a labelled region."""

    heading = ""
    region = ""

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name=self.heading, level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    @property
    def table(self) -> Locator:
        return self.page.get_by_role("region", name=self.region).get_by_role("table")

    def row(self, link_name: str) -> Locator:
        return self.table.get_by_role("row").filter(
            has=self.page.get_by_role("link", name=link_name, exact=True)
        )

    def cell(self, link_name: str, column: str) -> Locator:
        headers = [h.strip() for h in self.table.get_by_role("columnheader").all_inner_texts()]
        return self.row(link_name).get_by_role("cell").nth(headers.index(column))

    def rendered_row_count(self) -> int:
        return self.table.locator("tbody tr[data-index]").count()


class FleetOverviewPage(BasePage):
    path = "/fleet"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Fleet overview", level=1)).to_be_visible()
        expect(self.resources).to_be_visible()
        self.check_accessibility()

    @property
    def resources(self) -> Locator:
        return self.page.get_by_test_id("fleet-resources")

    def server_count(self, label: str) -> Locator:
        """The number on a server-count card: Total, Online, Offline, Draining, Maintenance."""
        return self.page.get_by_test_id(f"servers-{label.lower()}").locator("p").nth(1)

    def gpu_model_row(self, model: str) -> Locator:
        return (
            self.page.get_by_test_id("gpu-models")
            .get_by_role("row")
            .filter(has=self.page.get_by_role("rowheader", name=model, exact=True))
        )

    def chart(self, title: str) -> Locator:
        return self.page.get_by_role("figure", name=title)

    def free_now_row(self, model: str) -> Locator:
        """The largest request of `model` ("No GPU" for CPU-only work) that fits now."""
        return (
            self.page.get_by_test_id("free-now")
            .get_by_role("row")
            .filter(has=self.page.get_by_role("rowheader", name=model, exact=True))
        )

    def choose_window(self, label: str) -> None:
        self.page.get_by_text(label, exact=True).click()


class ServersPage(_TablePage):
    path = "/servers"
    heading = "Servers"
    region = "Servers"

    def search(self, text: str) -> None:
        self.page.get_by_label("Search by name").fill(text)

    def open_server(self, name: str) -> None:
        self.table.get_by_role("link", name=name, exact=True).click()

    def register_simulated(
        self, cluster_label: str, name: str, cpu: int, ram_gb: int, gpu_model: str, gpus: int
    ) -> None:
        self.page.get_by_role("button", name="Register server").click()
        dialog = self.page.get_by_role("dialog", name="Register a server")
        dialog.get_by_role("textbox", name="Cluster").click()
        self.page.get_by_role("option", name=cluster_label, exact=True).click()
        dialog.get_by_role("textbox", name="Name", exact=True).fill(name)
        dialog.get_by_label("CPU cores").fill(str(cpu))
        dialog.get_by_label("RAM (GB)").fill(str(ram_gb))
        dialog.get_by_label("GPU model (row 1)").fill(gpu_model)
        dialog.get_by_label("Count (row 1)").fill(str(gpus))
        dialog.get_by_role("button", name="Register").click()
        expect(dialog).to_have_count(0)


class ServerDetailPage(BasePage):
    def __init__(self, page: Page, server_id: str = "") -> None:
        super().__init__(page)
        self.path = f"/servers/{server_id}"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="GPUs", level=2)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    @property
    def title(self) -> Locator:
        return self.page.get_by_role("main").get_by_role("heading", level=1)

    @property
    def status(self) -> Locator:
        return self.page.locator("main [data-status]").first

    def gpu_card(self, index: int) -> Locator:
        return self.page.get_by_role("article", name=f"GPU {index}", exact=True)

    @property
    def events(self) -> Locator:
        return self.page.get_by_test_id("server-events")

    def chart(self, title: str) -> Locator:
        return self.page.get_by_role("figure", name=title)

    def act(self, action: str) -> None:
        """Drain, Maintenance, Back online."""
        self.page.get_by_role("button", name=action, exact=True).click()

    def open_cleanup(self) -> Locator:
        """The cleanup dialog, once its first dry run is listed."""
        self.page.get_by_role("button", name="Clean up", exact=True).click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog.get_by_text("Looking…")).to_have_count(0)
        return dialog

    def open_host_terminal(self) -> Locator:
        """The host terminal dialog (a shell on the server's host over SSH), once the
        terminal has connected or said why it could not."""
        self.page.get_by_role("button", name="Terminal", exact=True).click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog.get_by_test_id("terminal-status")).not_to_have_text(
            "Connecting…", timeout=20_000
        )
        return dialog

    def type_in_terminal(self, dialog: Locator, line: str) -> None:
        """Type ``line`` into the host terminal and press Enter."""
        dialog.get_by_test_id("terminal").click()
        self.page.keyboard.type(line)
        self.page.keyboard.press("Enter")

    def delete(self) -> None:
        self.page.get_by_role("button", name="Delete", exact=True).click()
        self.page.get_by_role("dialog").get_by_role("button", name="Delete server").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)  # closed, not fading


class ClustersPage(BasePage):
    path = "/clusters"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Clusters", level=1)).to_be_visible()
        expect(self.table.get_by_role("row").nth(1)).to_be_visible()
        self.check_accessibility()

    @property
    def table(self) -> Locator:
        return self.page.get_by_test_id("clusters-table")

    def row(self, name: str) -> Locator:
        return self.table.get_by_role("row").filter(
            has=self.page.get_by_role("rowheader", name=name, exact=True)
        )

    def create(self, name: str, kind: str = "simulated") -> None:
        self.page.get_by_label("New cluster name").fill(name)
        self.page.get_by_role("textbox", name="Kind").click()
        self.page.get_by_role("option", name=kind, exact=True).click()
        self.page.get_by_role("button", name="Create cluster").click()

    def rename(self, name: str, new_name: str) -> None:
        self.page.get_by_role("button", name=f"Rename {name}").click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_label("New name").fill(new_name)
        dialog.get_by_role("button", name="Rename").click()
        expect(dialog).to_have_count(0)

    def delete(self, name: str) -> None:
        self.page.get_by_role("button", name=f"Delete {name}").click()
        self.page.get_by_role("dialog").get_by_role("button", name="Delete cluster").click()
        expect(self.page.get_by_role("dialog")).to_have_count(0)  # closed, not fading

    @property
    def delete_error(self) -> Locator:
        return self.page.get_by_role("alert").filter(has_text="Could not delete the cluster")


class QueuePage(_TablePage):
    path = "/queue"
    heading = "Queue"
    region = "Queue"


class FairSharePage(BasePage):
    """The quota tree: one row per team (departments first, each followed by its teams),
    one line per resource (``data-resource``: cpu, ram_gb, gpu) in its figure columns."""

    path = "/fairshare"

    def expect_loaded(self) -> None:
        expect(self.page.get_by_role("heading", name="Fair share", level=1)).to_be_visible()
        expect(self.page.get_by_text("Loading…")).to_have_count(0)
        self.check_accessibility()

    @property
    def table(self) -> Locator:
        return self.page.get_by_role("table", name="Fair share by team")

    @property
    def capacity(self) -> Locator:
        return self.page.get_by_test_id("fairshare-capacity")

    @property
    def empty(self) -> Locator:
        return self.page.get_by_test_id("fairshare-empty")

    def row(self, team: str) -> Locator:
        return self.table.locator(f'tbody tr[data-team="{team}"]')

    def rows(self) -> list[str]:
        """The teams shown, in the order shown."""
        return [
            str(row.get_attribute("data-team"))
            for row in self.table.locator("tbody tr[data-team]").all()
        ]

    def cell(self, team: str, column: str) -> Locator:
        headers = [h.strip() for h in self.table.get_by_role("columnheader").all_inner_texts()]
        return self.row(team).locator("th, td").nth(headers.index(column))

    def weight(self, team: str, what: str = "all") -> Locator:
        """The team's weight (``all``), or its line for one resource (cpu, ram_gb,
        storage_gb, gpu) or GPU model weighed apart."""
        return self.cell(team, "Weight").locator(f'[data-weight="{what}"]')

    def gpu_model_share(self, team: str, model: str) -> Locator:
        """The team's fair share of a GPU model some team weighs (Fair share column)."""
        return self.cell(team, "Fair share").locator(f'[data-gpu-model-share="{model}"]')

    def figure(self, team: str, column: str, resource: str) -> Locator:
        """One resource's line of a figure column (Guarantee, Limit, Used, Borrowed, Fair
        share, Pending)."""
        return self.cell(team, column).locator(f"[data-resource={resource}]")

    def gpu_model(self, team: str, model: str) -> Locator:
        """A per-GPU-model guarantee's line under the team's Guarantee."""
        return self.cell(team, "Guarantee").locator(f'[data-gpu-model="{model}"]')

    def gpu_model_limit(self, team: str, model: str) -> Locator:
        """A per-GPU-model limit's line under the team's Limit."""
        return self.cell(team, "Limit").locator(f'[data-gpu-model-limit="{model}"]')


class AllWorkloadsPage(_TablePage):
    path = "/all-workloads"
    heading = "All workloads"
    region = "All workloads"

    @property
    def count_text(self) -> Locator:
        return self.page.get_by_test_id("all-workloads-count")

    def filter_name_prefix(self, prefix: str) -> None:
        self.page.get_by_label("Name starts with").fill(prefix)

    def filter_status(self, status: str) -> None:
        self.page.get_by_role("textbox", name="Status").click()
        self.page.get_by_role("option", name=status, exact=True).click()
        self.page.keyboard.press("Escape")

    def filter_owner(self, email: str) -> None:
        self.page.get_by_role("textbox", name="Owner").fill(email)
        self.page.get_by_role("option").filter(has_text=email).first.click()
