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
  },
};
