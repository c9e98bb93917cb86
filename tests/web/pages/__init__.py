"""Page objects: tests drive the dashboard only through these (one class per page, plus
AppShell for the header and nav). Each page object's ``expect_loaded`` waits for the page
and runs the axe-core check on it."""

from web.pages.admin import AuditPage, InvitesPage, TeamsPage, UsersPage
from web.pages.app_shell import AppShell
from web.pages.base import BasePage
from web.pages.fleet import (
    AllWorkloadsPage,
    ClustersPage,
    FairSharePage,
    FleetOverviewPage,
    QueuePage,
    ServerDetailPage,
    ServersPage,
)
from web.pages.images import ImagesPage
from web.pages.launch import LaunchPage
from web.pages.login import LoginPage
from web.pages.pools import PoolsPage
from web.pages.register import RegisterPage
from web.pages.workload_console import WorkloadConsolePage
from web.pages.workload_detail import WorkloadDetailPage
from web.pages.workloads import WorkloadsPage

__all__ = [
    "AllWorkloadsPage",
    "AppShell",
    "AuditPage",
    "BasePage",
    "ClustersPage",
    "FairSharePage",
    "FleetOverviewPage",
    "ImagesPage",
    "InvitesPage",
    "LaunchPage",
    "LoginPage",
    "PoolsPage",
    "QueuePage",
    "RegisterPage",
    "ServerDetailPage",
    "ServersPage",
    "TeamsPage",
    "UsersPage",
    "WorkloadConsolePage",
    "WorkloadDetailPage",
    "WorkloadsPage",
]
