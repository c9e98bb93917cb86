/** Route guards: logged in (else to /login and back), and the role a page needs. */
import { Center, Loader } from '@mantine/core';
import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { useMe } from '../api/queries/session';
import type { Role } from '../api/types';
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
