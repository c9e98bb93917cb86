/** The app shell: header (brand, theme toggle, user menu) and the nav the role allows. */
import { AppShell, Burger, Group, NavLink, ScrollArea, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { NavLink as RouterNavLink, Outlet, useLocation } from 'react-router-dom';
import { useLiveUpdates } from '../api/live';
import { useMe } from '../api/queries/session';
import { mayOpen } from '../auth/roles';
import { NAV_SECTIONS, pageRoutes } from '../routes';
import { ThemeToggle } from './ThemeToggle';
import { UserMenu } from './UserMenu';

export function AppLayout() {
  const [opened, { toggle, close }] = useDisclosure();
  const me = useMe();
  const location = useLocation();
  // Once per logged-in page: the live stream keeps every cached query current.
  useLiveUpdates();
  const visible = pageRoutes.filter((route) => route.label && mayOpen(me.data?.role, route.roles));

  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 230, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="sm">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Title order={1} size="h3">
              gpuyard
            </Title>
          </Group>
          <Group gap="sm">
            <ThemeToggle />
            <UserMenu />
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main navigation" data-testid="main-nav">
        <ScrollArea>
          {NAV_SECTIONS.map((section) => {
            const items = visible.filter((route) => route.section === section);
            if (items.length === 0) return null;
            return (
              <div key={section}>
                <Text size="xs" fw={700} tt="uppercase" c="dimmed" px="sm" pt="sm" pb={4} component="h2">
                  {section}
                </Text>
                {items.map((route) => {
                  const Icon = route.icon;
                  return (
                    <NavLink
                      key={route.path}
                      component={RouterNavLink}
                      to={route.path}
                      label={route.label}
                      leftSection={Icon ? <Icon size={16} aria-hidden /> : undefined}
                      active={location.pathname === route.path}
                      variant="filled"
                      onClick={close}
                    />
                  );
                })}
              </div>
            );
          })}
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
