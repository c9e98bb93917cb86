/**
 * Live updates: GET /api/v1/stream (server-sent events) into the TanStack Query caches.
 *
 * `useLiveUpdates()` is mounted once, in the app shell (only a logged-in page has one).
 * The browser's EventSource sends the session cookie (path /api) and reconnects by
 * itself after a dropped connection, with `Last-Event-ID`: the server replays what was
 * missed or says `resync`. Events:
 *
 * - `workload`: the workload's state after a change (not its env, command, ports or
 *   names). The row is updated in place (setQueryData) in its detail and in every cached
 *   list that holds it; a list that may gain it, and what the event cannot complete
 *   (a new server's name, the ports a start allocated), are refetched.
 * - `server`: a ServerPublic; its row in server lists is replaced; its detail (which
 *   has GPU holders the stream does not carry) and the fleet overview are refetched.
 * - `queue`: the queue changed; its queries are refetched.
 * - The fair-share view (GET /fairshare) has no event of its own: its usage, pending work
 *   and capacity move with workloads, the queue and servers, so any of those refetches
 *   it where a page shows it.
 * - `resync`: what was missed cannot be replayed: everything is refetched.
 *
 * Warm pools have no event of their own: a warm container is a workload, so an event of
 * one (priority 0, which only warm containers have, or a pool's known member) refetches
 * the pools where a page shows them.
 *
 * Refetches never cancel one under way (`cancelRefetch: false`), so a burst of events
 * costs one request per query, not one per event.
 */
import { notifyManager, useQueryClient, type QueryClient, type QueryKey } from '@tanstack/react-query';
import { useEffect } from 'react';
import { queryKeys } from './queryKeys';
import type { WorkloadFilter } from './queries/workloads';
import type { Placement, Pool, Server, Workload, WorkloadList } from './types';

export const STREAM_URL = '/api/v1/stream';
/** After the server refused the stream (an HTTP error ends EventSource for good). */
const REOPEN_AFTER_MS = 5_000;

/** `event: workload` (WorkloadChangePublic in the API's stream schemas). */
export type WorkloadChange = Pick<
  Workload,
  | 'id'
  | 'name'
  | 'owner_id'
  | 'team_id'
  | 'cluster_id'
  | 'status'
  | 'reason'
  | 'reason_code'
  | 'priority'
  | 'preemptible'
  | 'replicas'
  | 'cpu'
  | 'ram_gb'
  | 'storage_gb'
  | 'gpu'
  | 'gpu_model'
  | 'server_id'
  | 'gpu_indices'
  | 'preemption_count'
  | 'updated_at'
  | 'started_at'
  | 'finished_at'
> & { placements: { replica: number; server_id: string; gpu_indices: number[] }[] };

const REFETCH = { cancelRefetch: false } as const;
/** The query key areas (first element) that stream events keep current. */
const LIVE_AREAS = new Set<string>([
  queryKeys.workloads.all[0],
  queryKeys.servers.all[0],
  queryKeys.queue.all[0],
  queryKeys.fleet.all[0],
  queryKeys.pools.all[0],
  queryKeys.fairshare.all[0],
]);

/** POOL_PRIORITY (domain/pools.py): warm containers sit below every user priority. */
const POOL_PRIORITY = 0;

/**
 * The stream's state on the root element (`data-live`: connecting, open, closed), for
 * styles and for tests that must know the page is listening before they change things.
 */
function setLiveState(state: 'connecting' | 'open' | 'closed') {
  document.documentElement.dataset.live = state;
}

function refetch(queryClient: QueryClient, queryKey: QueryKey) {
  void queryClient.invalidateQueries({ queryKey, exact: true }, REFETCH);
}

/**
 * `row` updated by `change`; `complete` is false when the event leaves something the row
 * shows unknown (a server's name it did not have, the ports a start allocated).
 */
export function applyWorkloadChange(row: Workload, change: WorkloadChange): { row: Workload; complete: boolean } {
  const serverNames = new Map(row.placements.map((p) => [p.server_id, p.server_name]));
  let complete = true;
  const placements: Placement[] = change.placements.map((p) => {
    const serverName = serverNames.get(p.server_id);
    if (serverName === undefined) complete = false;
    const previous = row.placements.find((q) => q.replica === p.replica && q.server_id === p.server_id);
    return {
      replica: p.replica,
      server_id: p.server_id,
      server_name: serverName ?? '…',
      gpu_indices: p.gpu_indices,
      gpu_milli: previous?.gpu_milli ?? {},
    };
  });
  if (row.ports.length > 0 && row.status !== change.status) complete = false;
  const { placements: _ignored, ...fields } = change;
  const first = placements[0];
  return {
    row: { ...row, ...fields, placements, server_name: first ? first.server_name : null },
    complete,
  };
}

/** Whether a workload with `change`'s state belongs in a list asked with `filter`. */
export function matchesFilter(filter: WorkloadFilter, change: WorkloadChange): boolean {
  if (filter.owner_id && filter.owner_id !== change.owner_id) return false;
  if (filter.team_id && filter.team_id !== change.team_id) return false;
  if (filter.cluster_id && filter.cluster_id !== change.cluster_id) return false;
  if (filter.server_id && !change.placements.some((p) => p.server_id === filter.server_id)) return false;
  if (filter.status && filter.status.length > 0 && !(filter.status as string[]).includes(change.status)) return false;
  if (filter.name && filter.name !== change.name) return false;
  if (filter.name_prefix && !change.name.startsWith(filter.name_prefix)) return false;
  return true;
}

/** Row positions by id, per list array (a list of 10,000 is not searched per event). */
const positions = new WeakMap<readonly { id: string }[], Map<string, number>>();

function indexOf(rows: readonly { id: string }[], id: string): number {
  let index = positions.get(rows);
  if (!index) {
    index = new Map(rows.map((row, i) => [row.id, i]));
    positions.set(rows, index);
  }
  return index.get(id) ?? -1;
}

/** `rows` with `row` at `index`: a new array (the cache's data is never changed in place)
 * whose positions are the old array's. */
function replaced<T extends { id: string }>(rows: readonly T[], index: number, row: T): T[] {
  const copy = rows.slice();
  copy[index] = row;
  const known = positions.get(rows);
  if (known) positions.set(copy, known);
  return copy;
}

/** Batches events that arrive together: one cache pass and one render per batch, and only
 * the latest state of a workload that changed several times. */
const BATCH_MS = 16;

function onWorkload(queryClient: QueryClient, change: WorkloadChange) {
  const detailKey = queryKeys.workloads.detail(change.id);
  const detail = queryClient.getQueryData<Workload>(detailKey);
  if (detail) {
    const { row, complete } = applyWorkloadChange(detail, change);
    queryClient.setQueryData(detailKey, row);
    if (!complete) refetch(queryClient, detailKey);
  }
  // Its timeline gained an event (refetched only where a page shows it).
  refetch(queryClient, queryKeys.workloads.events(change.id));

  for (const [key, list] of queryClient.getQueriesData<WorkloadList>({ queryKey: ['workloads', 'list'] })) {
    if (!list) continue;
    const filter = (key[2] ?? {}) as WorkloadFilter;
    const index = indexOf(list.data, change.id);
    const belongs = matchesFilter(filter, change);
    if (index < 0) {
      // It may be new here. A list that already holds only one page of many gains it
      // only when it is the newest first page (a new submission).
      const whole = list.data.length >= list.count && !filter.offset;
      const newestFirst = !filter.offset && (!filter.sort || filter.sort === 'newest');
      if (belongs && (whole || (newestFirst && change.status === 'pending'))) refetch(queryClient, key);
      continue;
    }
    const { row, complete } = applyWorkloadChange(list.data[index], change);
    const data = replaced(list.data, index, row);
    queryClient.setQueryData<WorkloadList>(key, { ...list, data });
    // Gone from this filter, or the order may have changed, or the row is incomplete.
    const reordered = filter.sort === 'status' || filter.sort === 'priority';
    if (!belongs || reordered || !complete) refetch(queryClient, key);
  }
}

/** Whether `change` is of a warm container of a pool the cache holds (or of a new one). */
function isPoolMember(queryClient: QueryClient, change: WorkloadChange): boolean {
  if (change.priority === POOL_PRIORITY) return true;
  const pools = queryClient.getQueryData<{ data: Pool[] }>(queryKeys.pools.all);
  return !!pools && pools.data.some((pool) => pool.members.some((m) => m.workload_id === change.id));
}

function onServer(queryClient: QueryClient, server: Server) {
  for (const [key, list] of queryClient.getQueriesData<{ data: Server[]; count: number }>({
    queryKey: [...queryKeys.servers.all, 'list'],
  })) {
    if (!list) continue;
    const filter = (key[2] ?? {}) as { cluster_id?: string | null; status?: string | null };
    const belongs =
      (!filter.cluster_id || filter.cluster_id === server.cluster_id) && (!filter.status || filter.status === server.status);
    const index = indexOf(list.data, server.id);
    if (index < 0) {
      if (belongs) refetch(queryClient, key); // a new server, or newly in this filter
      continue;
    }
    const data = replaced(list.data, index, server);
    queryClient.setQueryData(key, { ...list, data });
    if (!belongs) refetch(queryClient, key);
  }
  // The detail has the GPUs' holders, which the event does not carry; its history of
  // status changes may have grown.
  refetch(queryClient, queryKeys.servers.detail(server.id));
  refetch(queryClient, queryKeys.servers.events(server.id));
  void queryClient.invalidateQueries({ queryKey: queryKeys.fleet.all }, REFETCH);
  refetch(queryClient, queryKeys.fairshare.all); // the online capacity may have changed
}

function parse<T>(event: MessageEvent): T | null {
  try {
    return JSON.parse(event.data as string) as T;
  } catch {
    return null;
  }
}

/** Open the live stream while mounted, and keep the query caches current with it. */
export function useLiveUpdates(): void {
  const queryClient = useQueryClient();

  useEffect(() => {
    let source: EventSource | null = null;
    let reopenTimer: number | undefined;
    let reopened = false;
    const waiting = new Map<string, WorkloadChange>();
    let flushTimer: number | undefined;
    const flush = () => {
      flushTimer = undefined;
      const changes = [...waiting.values()];
      waiting.clear();
      notifyManager.batch(() => changes.forEach((change) => onWorkload(queryClient, change)));
      if (changes.some((change) => isPoolMember(queryClient, change))) refetch(queryClient, queryKeys.pools.all);
      if (changes.length > 0) refetch(queryClient, queryKeys.fairshare.all);
    };

    const open = () => {
      const opening = Date.now();
      source = new EventSource(STREAM_URL);
      setLiveState('connecting');
      source.addEventListener('open', () => {
        setLiveState('open');
        if (reopened) {
          // A new EventSource has no Last-Event-ID to resume from: catch up by reading.
          void queryClient.invalidateQueries();
        } else {
          // What was read before the stream began may have changed unseen since.
          void queryClient.invalidateQueries(
            {
              predicate: (query) =>
                LIVE_AREAS.has(String(query.queryKey[0])) &&
                query.state.dataUpdatedAt > 0 &&
                query.state.dataUpdatedAt < opening,
            },
            REFETCH,
          );
        }
      });
      source.addEventListener('workload', (event) => {
        const change = parse<WorkloadChange>(event);
        if (!change) return;
        waiting.set(change.id, change);
        flushTimer ??= window.setTimeout(flush, BATCH_MS);
      });
      source.addEventListener('server', (event) => {
        const server = parse<Server>(event);
        if (server) onServer(queryClient, server);
      });
      source.addEventListener('queue', () => {
        void queryClient.invalidateQueries({ queryKey: queryKeys.queue.all }, REFETCH);
        refetch(queryClient, queryKeys.fairshare.all);
      });
      source.addEventListener('resync', () => {
        void queryClient.invalidateQueries();
      });
      source.addEventListener('error', () => {
        // CONNECTING: the browser retries by itself (with Last-Event-ID). CLOSED: the
        // server answered an error (a 401 ends the session elsewhere); try again later.
        setLiveState(source?.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
        if (source?.readyState !== EventSource.CLOSED) return;
        source.close();
        reopenTimer = window.setTimeout(() => {
          reopened = true;
          void queryClient.invalidateQueries({ queryKey: queryKeys.me });
          open();
        }, REOPEN_AFTER_MS);
      });
    };

    open();
    return () => {
      window.clearTimeout(reopenTimer);
      window.clearTimeout(flushTimer);
      source?.close();
      setLiveState('closed');
    };
  }, [queryClient]);
}
