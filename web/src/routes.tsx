/**
 * The page table: one entry per page, read by the router (App.tsx) and by the nav
 * (layout/AppLayout.tsx). A page joins the dashboard by adding its entry here; `roles`
 * hides its nav item from the others and makes its URL show "not allowed" to them.
 */
import {
  IconAddressBook,
  IconChartBar,
  IconList,
  IconListDetails,
  IconRocket,
  IconServer,
  IconShieldCheck,
  IconTicket,
  IconUsers,
  IconUsersGroup,
  type Icon,
} from '@tabler/icons-react';
import type { ReactNode } from 'react';
import type { Role } from './api/types';
import { ADMINS, EVERYONE, FLEET_STAFF } from './auth/roles';
import { PlaceholderPage } from './pages/PlaceholderPage';
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
    element: <PlaceholderPage title="Fleet overview" />,
  },
  {
    path: '/servers',
    label: 'Servers',
    icon: IconServer,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <PlaceholderPage title="Servers" />,
  },
  {
    path: '/queue',
    label: 'Queue',
    icon: IconListDetails,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <PlaceholderPage title="Queue" />,
  },
  {
    path: '/all-workloads',
    label: 'All workloads',
    icon: IconAddressBook,
    section: 'Fleet',
    roles: FLEET_STAFF,
    element: <PlaceholderPage title="All workloads" />,
  },
  {
    path: '/admin/users',
    label: 'Users',
    icon: IconUsers,
    section: 'Administration',
    roles: ADMINS,
    element: <PlaceholderPage title="Users" />,
  },
  {
    path: '/admin/invites',
    label: 'Invites',
    icon: IconTicket,
    section: 'Administration',
    roles: ADMINS,
    element: <PlaceholderPage title="Invites" />,
  },
  {
    path: '/admin/teams',
    label: 'Teams',
    icon: IconUsersGroup,
    section: 'Administration',
    roles: ADMINS,
    element: <PlaceholderPage title="Teams" />,
  },
  {
    path: '/admin/audit',
    label: 'Audit',
    icon: IconShieldCheck,
    section: 'Administration',
    roles: ADMINS,
    element: <PlaceholderPage title="Audit log" />,
  },
];

export const NAV_SECTIONS = ['Work', 'Fleet', 'Administration'] as const;
