/**
 * The page table: one entry per page, read by the router (App.tsx) and by the nav
 * (layout/AppLayout.tsx). A page joins the dashboard by adding its entry here; `roles`
 * hides its nav item from the others and makes its URL show "not allowed" to them.
 */
import {
  IconAddressBook,
  IconChartBar,
  IconFlame,
  IconScale,
  IconList,
  IconListDetails,
  IconPackages,
  IconRocket,
  IconServer,
  IconShieldCheck,
  IconTicket,
  IconTopologyStar3,
  IconUsers,
  IconUsersGroup,
  type Icon,
} from '@tabler/icons-react';
import type { ReactNode } from 'react';
import type { Role } from './api/types';
import { AuditPage } from './pages/admin/AuditPage';
import { InvitesPage } from './pages/admin/InvitesPage';
import { TeamsPage } from './pages/admin/TeamsPage';
import { UsersPage } from './pages/admin/UsersPage';
import { AllWorkloadsPage } from './pages/fleet/AllWorkloadsPage';
import { ClustersPage } from './pages/fleet/ClustersPage';
import { FairSharePage } from './pages/fleet/FairSharePage';
import { FleetOverviewPage } from './pages/fleet/FleetOverviewPage';
import { QueuePage } from './pages/fleet/QueuePage';
import { ServerDetailPage } from './pages/fleet/ServerDetailPage';
import { ServersPage } from './pages/fleet/ServersPage';
import { ADMINS, EVERYONE, FLEET_STAFF } from './auth/roles';
import { ImagesPage } from './pages/images/ImagesPage';
import { PoolsPage } from './pages/pools/PoolsPage';
import { LaunchPage } from './pages/workloads/LaunchPage';
import { MyWorkloadsPage } from './pages/workloads/MyWorkloadsPage';
import { WorkloadDetailPage } from './pages/workloads/WorkloadDetailPage';

export interface PageRoute {
  path: string;
  /** Nav label and page title; routes without one are not in the nav. */
  label?: string;
  icon?: Icon;
  /** Nav section. */
  section?: 'Work' | 'Fleet' | 'Administration';
  roles: readonly Role[];
  element: ReactNode;
}

export const pageRoutes: PageRoute[] = [
  {
    path: '/workloads',
    label: 'My workloads',
    icon: IconList,
    section: 'Work',
    roles: EVERYONE,
    element: <MyWorkloadsPage />,
  },
  {
    path: '/launch',
    label: 'Launch',
    icon: IconRocket,
    section: 'Work',
    roles: EVERYONE,
    element: <LaunchPage />,
  },
  {
    path: '/images',
    label: 'Images',
    icon: IconPackages,
    section: 'Work',
    roles: EVERYONE,
    element: <ImagesPage />,
  },
  {
    path: '/workloads/:workloadId',
    roles: EVERYONE,
    element: <WorkloadDetailPage />,
  },
  {
    path: '/fleet',
    label: 'Fleet overview',
    icon: IconChartBar,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <FleetOverviewPage />,
  },
  {
    path: '/servers',
    label: 'Servers',
    icon: IconServer,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <ServersPage />,
  },
  {
    path: '/servers/:serverId',
    roles: FLEET_STAFF,
    element: <ServerDetailPage />,
  },
  {
    path: '/clusters',
    label: 'Clusters',
    icon: IconTopologyStar3,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <ClustersPage />,
  },
  {
    path: '/queue',
    label: 'Queue',
    icon: IconListDetails,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <QueuePage />,
  },
  {
    // Everyone: users see their own teams and the departments above them (the API's
    // fairshare.read scope), operators and admins every team.
    path: '/fairshare',
    label: 'Fair share',
    icon: IconScale,
    section: 'Fleet',
    roles: EVERYONE,
    element: <FairSharePage />,
  },
  {
    path: '/all-workloads',
    label: 'All workloads',
    icon: IconAddressBook,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <AllWorkloadsPage />,
  },
  {
    path: '/pools',
    label: 'Warm pools',
    icon: IconFlame,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <PoolsPage />,
  },
  {
    path: '/admin/users',
    label: 'Users',
    icon: IconUsers,
    section: 'Administration',
    roles: ADMINS,
    element: <UsersPage />,
  },
  {
    path: '/admin/invites',
    label: 'Invites',
    icon: IconTicket,
    section: 'Administration',
    roles: ADMINS,
    element: <InvitesPage />,
  },
  {
    path: '/admin/teams',
    label: 'Teams',
    icon: IconUsersGroup,
    section: 'Administration',
    roles: ADMINS,
    element: <TeamsPage />,
  },
  {
    path: '/admin/audit',
    label: 'Audit',
    icon: IconShieldCheck,
    section: 'Administration',
    roles: ADMINS,
    element: <AuditPage />,
  },
];

export const NAV_SECTIONS = ['Work', 'Fleet', 'Administration'] as const;
