/** Idle culling: a workload's status (warning, time left) and a team's policy. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { TeamCullingBody } from '../types';

/** How often a running workload's culling status is read again (the loop ticks each minute). */
const CULLING_REFRESH_MS = 30_000;

/** GET /api/v1/workloads/{id}/culling: idle since, the warning and the time left. */
export function useWorkloadCulling(workloadId: string, running: boolean) {
  return useQuery({
    queryKey: queryKeys.culling.workload(workloadId),
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/workloads/{workload_id}/culling', {
          params: { path: { workload_id: workloadId } },
        }),
      ),
    refetchInterval: running ? CULLING_REFRESH_MS : false,
  });
}

/** GET /api/v1/teams/{id}/culling: the team's policy as set and what applies. */
export function useTeamCulling(teamId: string) {
  return useQuery({
    queryKey: queryKeys.culling.team(teamId),
    queryFn: async () =>
      unwrap(await api.GET('/api/v1/teams/{team_id}/culling', { params: { path: { team_id: teamId } } })),
  });
}

/** PUT /api/v1/teams/{id}/culling (team admins; only admins set or lift "never"). */
export function useSetTeamCulling() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ teamId, body }: { teamId: string; body: TeamCullingBody }) =>
      unwrap(
        await api.PUT('/api/v1/teams/{team_id}/culling', { params: { path: { team_id: teamId } }, body }),
      ),
    onSuccess: (data, { teamId }) => {
      queryClient.setQueryData(queryKeys.culling.team(teamId), data);
      void queryClient.invalidateQueries({ queryKey: queryKeys.culling.all });
    },
  });
}
