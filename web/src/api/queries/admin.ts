/** Users, invites, teams and the audit log (admins). */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { QuotaBody, Role } from '../types';
import { fetchAllPages } from './paging';

export function useUsers(options: { enabled?: boolean } = {}) {
  return useQuery({
    queryKey: queryKeys.users.all,
    enabled: options.enabled ?? true,
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/users', { params: { query: { offset, limit } } })),
      ),
  });
}

export function useUpdateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, ...body }: { id: string; role?: Role; is_active?: boolean }) =>
      unwrap(await api.PATCH('/api/v1/users/{user_id}', { params: { path: { user_id: id } }, body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.users.all }),
  });
}

export function useDeleteUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/users/{user_id}', { params: { path: { user_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.users.all }),
  });
}

export type InviteStatus = 'pending' | 'used' | 'expired';

export function useInvites(status: InviteStatus | null) {
  return useQuery({
    queryKey: queryKeys.invites.list(status),
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/invites', { params: { query: { status, offset, limit } } })),
      ),
    placeholderData: keepPreviousData,
  });
}

export function useCreateInvite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { email: string; role: Role; team_id?: string | null }) =>
      unwrap(await api.POST('/api/v1/invites', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.invites.all }),
  });
}

export function useRevokeInvite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/invites/{invite_id}', { params: { path: { invite_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.invites.all }),
  });
}

export function useTeams() {
  return useQuery({
    queryKey: queryKeys.teams.all,
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/teams', { params: { query: { offset, limit } } })),
      ),
  });
}

export function useCreateTeam() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { name: string; quota: QuotaBody; members_can_read: boolean }) =>
      unwrap(await api.POST('/api/v1/teams', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.teams.all }),
  });
}

export function useUpdateTeam() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, ...body }: { id: string; name?: string; quota?: QuotaBody; members_can_read?: boolean }) =>
      unwrap(await api.PATCH('/api/v1/teams/{team_id}', { params: { path: { team_id: id } }, body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.teams.all }),
  });
}

export function useAddTeamMember() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ teamId, userId, isTeamAdmin }: { teamId: string; userId: string; isTeamAdmin: boolean }) =>
      unwrap(
        await api.POST('/api/v1/teams/{team_id}/members', {
          params: { path: { team_id: teamId } },
          body: { user_id: userId, is_team_admin: isTeamAdmin },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.teams.all }),
  });
}

export function useRemoveTeamMember() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ teamId, userId }: { teamId: string; userId: string }) =>
      unwrap(
        await api.DELETE('/api/v1/teams/{team_id}/members/{user_id}', {
          params: { path: { team_id: teamId, user_id: userId } },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.teams.all }),
  });
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target_type?: string;
  target_id?: string;
  since?: string;
  until?: string;
}

export function useAuditEvents(filter: AuditFilter) {
  const query = Object.fromEntries(Object.entries(filter).filter(([, value]) => value)) as AuditFilter;
  return useQuery({
    queryKey: queryKeys.audit.list({ ...query }),
    queryFn: async () => unwrap(await api.GET('/api/v1/audit', { params: { query: { ...query, limit: 1000 } } })),
    placeholderData: keepPreviousData,
  });
}

/** GET /audit/verify: is the hash chain intact? */
export function useAuditVerification() {
  return useQuery({
    queryKey: queryKeys.audit.verify,
    queryFn: async () => unwrap(await api.GET('/api/v1/audit/verify')),
  });
}
