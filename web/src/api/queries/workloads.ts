/** Workload queries and mutations. */
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { paths } from '../schema';

export type WorkloadFilter = NonNullable<
  paths['/api/v1/workloads']['get']['parameters']['query']
>;

/** GET /api/v1/workloads with a filter (owner_id, status, server_id...). */
export function useWorkloads(filter: WorkloadFilter, options: { enabled?: boolean } = {}) {
  return useQuery({
    queryKey: queryKeys.workloads.list(filter),
    queryFn: async () => unwrap(await api.GET('/api/v1/workloads', { params: { query: filter } })),
    placeholderData: keepPreviousData,
    enabled: options.enabled ?? true,
  });
}
