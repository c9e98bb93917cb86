/** Route guards: logged in (else to /login and back), and the role a page needs. */
import { Button, Center, Loader, Stack } from '@mantine/core';
import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { useMe } from '../api/queries/session';
import type { Role } from '../api/types';
import { QueryError } from '../components/QueryError';
import { NotAllowedPage } from '../pages/session/NotAllowedPage';
import { mayOpen } from './roles';

export function loginPath(next: string): string {
  return next && next !== '/' ? `/login?next=${encodeURIComponent(next)}` : '/login';
}

/** A `next` that stays on this site: no `https://...`, `//evil.example`, nor `/\evil.example`
 * (browsers read a backslash as a slash). */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.includes('\\') ? next : '/';
}

/** The routing login (routes on a host name of their own, docs/operations.md): served by
 * the API, not a page of this app, so reaching it takes a full page load. */
const ROUTING_LOGIN = '/api/v1/routing/login?';

/** Whether `next` (already made safe) leaves the app for the server. */
export function leavesTheApp(next: string): boolean {
  return next.startsWith(ROUTING_LOGIN);
}

export function RequireAuth({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) {
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  }
  if (me.isError) {
    // Not a 401 (that is data: null): the server is down or broken; say so, do not
    // pretend the session ended.
    return (
      <Center h="100vh" p="md" component="main">
        <Stack>
          <QueryError error={me.error} title="The gpuyard server did not answer" />
          <Button onClick={() => me.refetch()}>Try again</Button>
        </Stack>
      </Center>
    );
  }
  if (!me.data) {
    return <Navigate to={loginPath(location.pathname + location.search)} replace />;
  }
  return <>{children}</>;
}

export function RequireRole({ roles, children }: { roles: readonly Role[]; children: ReactNode }) {
  const me = useMe();
  if (!mayOpen(me.data?.role, roles)) return <NotAllowedPage />;
  return <>{children}</>;
}
