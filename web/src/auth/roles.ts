/** Which roles see which pages: a convenience for the UI; the API enforces the policy. */
import type { Role } from '../api/types';

export const EVERYONE: readonly Role[] = ['user', 'operator', 'admin'];
export const FLEET_STAFF: readonly Role[] = ['operator', 'admin'];
export const ADMINS: readonly Role[] = ['admin'];

export function roleOf(role: string | undefined): Role | null {
  return role === 'admin' || role === 'operator' || role === 'user' ? role : null;
}

export function mayOpen(role: string | undefined, allowed: readonly Role[]): boolean {
  const known = roleOf(role);
  return known !== null && allowed.includes(known);
}
