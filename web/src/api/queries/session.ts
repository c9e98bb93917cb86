/** The session: who is logged in, login, registration and logout. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { CurrentUser } from '../types';

/** The logged-in user; null when nobody is (GET /auth/me answered 401). */
export function useMe() {
  return useQuery({
    queryKey: queryKeys.me,
    queryFn: async (): Promise<CurrentUser | null> => {
      const result = await api.GET('/api/v1/auth/me');
      if (result.response.status === 401) return null;
      return unwrap(result);
    },
    staleTime: 60_000,
    retry: (count, error) => !(error instanceof ApiError) && count < 2,
  });
}

export interface Credentials {
  email: string;
  password: string;
}

export function useLogin() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ email, password }: Credentials) =>
      unwrap(await api.POST('/api/v1/auth/login', { body: { email, password, set_cookie: true } })),
    onSuccess: async () => {
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== queryKeys.me[0] });
      await queryClient.invalidateQueries({ queryKey: queryKeys.me });
    },
  });
}

export interface Registration extends Credentials {
  invite_code: string;
  username?: string;
}

export function useRegister() {
  const login = useLogin();
  return useMutation({
    mutationFn: async (registration: Registration) => {
      const { username, ...rest } = registration;
      unwrap(
        await api.POST('/api/v1/auth/register', {
          body: { ...rest, username: username ? username : null },
        }),
      );
      // Registered: log in at once with the same credentials.
      await login.mutateAsync({ email: registration.email, password: registration.password });
    },
  });
}

export function useLogout() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      const result = await api.POST('/api/v1/auth/logout');
      // Already logged out (401) is what we wanted anyway.
      if (result.response.status !== 401) unwrap(result);
    },
    onSettled: () => {
      queryClient.clear();
      queryClient.setQueryData(queryKeys.me, null);
    },
  });
}
