/**
 * What the launch dialog needs to know about the fleet: its clusters, its GPU models and
 * what could start now (GET /fleet/overview's free_now), per cluster.
 */
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';

/** GET /api/v1/fleet/overview, narrowed to one cluster when `clusterId` is given. */
export function useFleetOverview(clusterId: string | null) {
  return useQuery({
    queryKey: queryKeys.fleet.overview(clusterId),
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/fleet/overview', {
          params: { query: clusterId ? { cluster_id: clusterId } : {} },
        }),
      ),
  });
}

/** GET /api/v1/clusters. */
export function useClusters() {
  return useQuery({
    queryKey: queryKeys.clusters.all,
    queryFn: async () => unwrap(await api.GET('/api/v1/clusters')),
    staleTime: 60_000,
  });
}
