/**
 * Warm pools (admins and operators): each pool with its warm containers, and the admin
 * operations. The live stream keeps the list current (api/live.ts refetches it on an
 * event of a warm container); the stream does not say when a pool's spec changes elsewhere
 * without moving a container (an image or port range), so the list is also read again
 * every POOLS_REFETCH_MS.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { Pool, PoolCreate, PoolUpdate } from '../types';
import { fetchAllPages } from './paging';

export const POOLS_REFETCH_MS = 30_000;

export function usePools() {
  return useQuery({
    queryKey: queryKeys.pools.all,
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/pools', { params: { query: { offset, limit } } })),
      ),
    refetchInterval: POOLS_REFETCH_MS,
  });
}

/** A pool the API just answered, put into the list at once (its members and counts). */
function remember(queryClient: ReturnType<typeof useQueryClient>, pool: Pool) {
  queryClient.setQueryData<{ data: Pool[]; count: number }>(queryKeys.pools.all, (list) =>
    list && list.data.some((p) => p.id === pool.id)
      ? { ...list, data: list.data.map((p) => (p.id === pool.id ? pool : p)) }
      : list,
  );
}

/** What a pool change touches besides the pools: warm containers are workloads. */
function invalidate(queryClient: ReturnType<typeof useQueryClient>) {
  return Promise.all([
    queryClient.invalidateQueries({ queryKey: queryKeys.pools.all }),
    queryClient.invalidateQueries({ queryKey: queryKeys.fleet.all }),
  ]);
}

export function useCreatePool() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: PoolCreate) => unwrap(await api.POST('/api/v1/pools', { body })),
    onSuccess: () => invalidate(queryClient),
  });
}

/** PATCH /pools/{id}: resize (target_size), or a new image or port range. */
export function useUpdatePool() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, body }: { id: string; body: PoolUpdate }) =>
      unwrap(await api.PATCH('/api/v1/pools/{pool_id}', { params: { path: { pool_id: id } }, body })),
    onSuccess: (pool) => {
      remember(queryClient, pool);
      return invalidate(queryClient);
    },
  });
}

export function useReinitialisePool() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.POST('/api/v1/pools/{pool_id}/reinitialise', { params: { path: { pool_id: id } } })),
    onSuccess: (pool) => {
      remember(queryClient, pool);
      return invalidate(queryClient);
    },
  });
}

/** An assigned warm container back to its pool (available again, its user's claim ends). */
export function useReleasePoolMember() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ poolId, workloadId }: { poolId: string; workloadId: string }) =>
      unwrap(
        await api.POST('/api/v1/pools/{pool_id}/members/{workload_id}/release', {
          params: { path: { pool_id: poolId, workload_id: workloadId } },
        }),
      ),
    onSuccess: async (pool, { workloadId }) => {
      remember(queryClient, pool);
      await Promise.all([
        invalidate(queryClient),
        queryClient.invalidateQueries({ queryKey: queryKeys.workloads.detail(workloadId) }),
      ]);
    },
  });
}

export function useDeletePool() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/pools/{pool_id}', { params: { path: { pool_id: id } } })),
    onSuccess: () => invalidate(queryClient),
  });
}
