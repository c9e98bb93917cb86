/**
 * Every query key in one place, so that a mutation (or, later, a live event from
 * /api/v1/stream) can invalidate exactly what it changed.
 */
export const queryKeys = {
  me: ['session', 'me'] as const,
  /** A workload's workspace: one key per directory listed. */
  workloadFiles: {
    all: (workloadId: string) => ['workload-files', workloadId] as const,
    dir: (workloadId: string, path: string) => ['workload-files', workloadId, path] as const,
  },
  workloads: {
    all: ['workloads'] as const,
    list: (filter: Record<string, unknown>) => ['workloads', 'list', filter] as const,
    detail: (id: string) => ['workloads', 'detail', id] as const,
    events: (id: string) => ['workloads', 'events', id] as const,
  },
  servers: {
    all: ['servers'] as const,
    list: (filter: Record<string, unknown>) => ['servers', 'list', filter] as const,
    detail: (id: string) => ['servers', 'detail', id] as const,
    events: (id: string) => ['servers', 'events', id] as const,
  },
  queue: {
    all: ['queue'] as const,
  },
  fleet: {
    all: ['fleet'] as const,
    /** GET /fleet/overview, optionally narrowed to one cluster (null: all). */
    overview: (clusterId: string | null) => ['fleet', 'overview', clusterId] as const,
  },
  clusters: {
    all: ['clusters'] as const,
  },
};
