/** The operators' view of every workload, filtered on the server, all pages. */
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { WorkloadSort, WorkloadStatus } from '../types';
import { fetchAllPages } from './paging';

export interface AllWorkloadsFilter {
  status?: WorkloadStatus[];
  owner_id?: string;
  team_id?: string;
  server_id?: string;
  cluster_id?: string;
  name_prefix?: string;
  sort?: WorkloadSort;
}

export function useAllWorkloads(filter: AllWorkloadsFilter) {
  // Empty fields are no filter at all.
  const query = Object.fromEntries(
    Object.entries(filter).filter(([, value]) => value !== undefined && value !== '' && !(Array.isArray(value) && !value.length)),
  ) as AllWorkloadsFilter;
  const queryClient = useQueryClient();
  // A workload list like any other (live updates patch its rows and refetch it when a
  // matching workload appears); `pages: 'all'` keeps it apart from one-page lists.
  const queryKey = queryKeys.workloads.list({ ...query, pages: 'all' });
  return useQuery({
    queryKey,
    queryFn: async () =>
      fetchAllPages(
        async (offset, limit) =>
          unwrap(await api.GET('/api/v1/workloads', { params: { query: { ...query, offset, limit } } })),
        // 10,000 workloads are ten pages: the first is on screen while the rest load.
        // Only on a first load: a refetch keeps showing the whole list it had.
        (first) => queryClient.getQueryData(queryKey) ?? queryClient.setQueryData(queryKey, first),
      ),
    placeholderData: keepPreviousData,
  });
}
