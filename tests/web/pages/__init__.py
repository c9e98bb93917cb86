"""Page objects: tests drive the dashboard only through these (one class per page, plus
AppShell for the header and nav). Each page object's ``expect_loaded`` waits for the page
and runs the axe-core check on it."""

from web.pages.app_shell import AppShell
from web.pages.base import BasePage
from web.pages.launch import LaunchPage
from web.pages.login import LoginPage
from web.pages.register import RegisterPage
from web.pages.workload_console import WorkloadConsolePage
from web.pages.workload_detail import WorkloadDetailPage
from web.pages.workloads import WorkloadsPage

__all__ = [
    "AppShell",
    "BasePage",
    "LaunchPage",
    "LoginPage",
    "RegisterPage",
    "WorkloadConsolePage",
    "WorkloadDetailPage",
    "WorkloadsPage",
]
