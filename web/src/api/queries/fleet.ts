/** Fleet overview and its history, clusters, servers and the queue (operators and admins). */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { ClusterKind, HistoryWindow, ServerCreate, ServerStatus } from '../types';
import { fetchAllPages } from './paging';

/** GET /fleet/overview: totals, allocation, server counts, GPU models and what could
 * start now (free_now: the launch dialog's hints), narrowed to one cluster if given. */
export function useFleetOverview(clusterId: string | null = null) {
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

/** GET /fleet/history: the fleet's allocation and utilisation over a window. */
export function useFleetHistory(window: HistoryWindow) {
  return useQuery({
    queryKey: queryKeys.fleet.history(window),
    queryFn: async () => unwrap(await api.GET('/api/v1/fleet/history', { params: { query: { window } } })),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
}

/** GET /clusters, every page. */
export function useClusters() {
  return useQuery({
    queryKey: queryKeys.clusters.all,
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/clusters', { params: { query: { offset, limit } } })),
      ),
  });
}

export function useCreateCluster() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { name: string; kind: ClusterKind; kubeconfig?: string | null }) =>
      unwrap(await api.POST('/api/v1/clusters', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.clusters.all }),
  });
}

export function useRenameCluster() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, name }: { id: string; name: string }) =>
      unwrap(await api.PATCH('/api/v1/clusters/{cluster_id}', { params: { path: { cluster_id: id } }, body: { name } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.clusters.all }),
  });
}

export function useDeleteCluster() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/clusters/{cluster_id}', { params: { path: { cluster_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.clusters.all }),
  });
}

export interface ServerFilter {
  cluster_id?: string | null;
  status?: ServerStatus | null;
}

/** Every server (of a cluster, of a status), all pages. */
export function useServers(filter: ServerFilter = {}, options: { enabled?: boolean } = {}) {
  const queryClient = useQueryClient();
  const queryKey = queryKeys.servers.list({ ...filter });
  return useQuery({
    queryKey,
    enabled: options.enabled ?? true,
    queryFn: async () =>
      fetchAllPages(
        async (offset, limit) =>
          unwrap(await api.GET('/api/v1/servers', { params: { query: { ...filter, offset, limit } } })),
        // Only on a first load: a refetch keeps showing the whole list it had.
        (first) => queryClient.getQueryData(queryKey) ?? queryClient.setQueryData(queryKey, first),
      ),
    placeholderData: keepPreviousData,
  });
}

export function useServer(id: string) {
  return useQuery({
    queryKey: queryKeys.servers.detail(id),
    queryFn: async () =>
      unwrap(await api.GET('/api/v1/servers/{server_id}', { params: { path: { server_id: id } } })),
  });
}

export function useServerEvents(id: string) {
  return useQuery({
    queryKey: queryKeys.servers.events(id),
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/servers/{server_id}/events', {
          params: { path: { server_id: id }, query: { limit: 200 } },
        }),
      ),
  });
}

export function useServerHistory(id: string, window: HistoryWindow) {
  return useQuery({
    queryKey: queryKeys.servers.history(id, window),
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/servers/{server_id}/history', {
          params: { path: { server_id: id }, query: { window } },
        }),
      ),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
}

/** What a server change touches: the server lists and detail, the fleet totals, the queue. */
function invalidateFleet(queryClient: ReturnType<typeof useQueryClient>) {
  return Promise.all([
    queryClient.invalidateQueries({ queryKey: queryKeys.servers.all }),
    queryClient.invalidateQueries({ queryKey: queryKeys.fleet.all }),
    queryClient.invalidateQueries({ queryKey: queryKeys.queue.all }),
  ]);
}

export function useRegisterServer() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: ServerCreate) => unwrap(await api.POST('/api/v1/servers', { body })),
    onSuccess: () => invalidateFleet(queryClient),
  });
}

/** Drain, maintenance, back online (PATCH /servers/{id} status). */
export function useSetServerStatus() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, status }: { id: string; status: ServerStatus }) =>
      unwrap(
        await api.PATCH('/api/v1/servers/{server_id}', { params: { path: { server_id: id } }, body: { status } }),
      ),
    onSuccess: () => invalidateFleet(queryClient),
  });
}

export function useDeleteServer() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/servers/{server_id}', { params: { path: { server_id: id } } })),
    onSuccess: () => invalidateFleet(queryClient),
  });
}

/** POST /servers/{id}/cleanup: a dry run lists what would go; a real one removes it and
 * adds a server event. */
export function useServerCleanup() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, dryRun, retentionHours }: { id: string; dryRun: boolean; retentionHours?: number | null }) =>
      unwrap(
        await api.POST('/api/v1/servers/{server_id}/cleanup', {
          params: { path: { server_id: id } },
          body: { dry_run: dryRun, retention_hours: retentionHours ?? null },
        }),
      ),
    onSuccess: (_report, { id, dryRun }) =>
      dryRun ? undefined : queryClient.invalidateQueries({ queryKey: queryKeys.servers.events(id) }),
  });
}

/** GET /queue: pending work in scheduling order, each with why it waits. */
export function useQueue() {
  return useQuery({
    queryKey: queryKeys.queue.all,
    queryFn: async () => unwrap(await api.GET('/api/v1/queue')),
  });
}

/** GET /fairshare: the quota tree, each team's guarantee, limit, usage, borrowing and
 * fair share (users: their teams and the departments above them). */
export function useFairShare() {
  return useQuery({
    queryKey: queryKeys.fairshare.all,
    queryFn: async () => unwrap(await api.GET('/api/v1/fairshare')),
    // The stream refetches it on every event its reader gets, but a user gets no event of
    // a team-mate's workload they may not read (it still moves their team's usage): a
    // slow poll keeps their view from going stale.
    refetchInterval: 30_000,
  });
}
