/**
 * Every query key in one place, so that a mutation or a live event from /api/v1/stream
 * (api/live.ts) updates or invalidates exactly what it changed.
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
  fleet: {
    all: ['fleet'] as const,
    /** GET /fleet/overview, optionally narrowed to one cluster (null: all). */
    overview: (clusterId: string | null) => ['fleet', 'overview', clusterId] as const,
    history: (window: string) => ['fleet', 'history', window] as const,
  },
  clusters: {
    all: ['clusters'] as const,
  },
  servers: {
    all: ['servers'] as const,
    list: (filter: Record<string, unknown>) => ['servers', 'list', filter] as const,
    detail: (id: string) => ['servers', 'detail', id] as const,
    events: (id: string) => ['servers', 'events', id] as const,
    history: (id: string, window: string) => ['servers', 'history', id, window] as const,
  },
  queue: {
    all: ['queue'] as const,
  },
  /** GET /fairshare: usage moves with every workload that starts or stops. */
  fairshare: {
    all: ['fairshare'] as const,
  },
  users: {
    all: ['users'] as const,
  },
  invites: {
    all: ['invites'] as const,
    list: (status: string | null) => ['invites', 'list', status] as const,
  },
  teams: {
    all: ['teams'] as const,
  },
  /** Idle culling: a team's policy, a workload's status (time left before a stop). */
  culling: {
    all: ['culling'] as const,
    team: (teamId: string) => ['culling', 'team', teamId] as const,
    workload: (workloadId: string) => ['culling', 'workload', workloadId] as const,
  },
  /** The image catalog (GET /images). */
  images: {
    all: ['images'] as const,
  },
  registries: {
    all: ['registries'] as const,
  },
  /** What is present on one docker server (GET /servers/{id}/images). */
  serverImages: {
    all: ['server-images'] as const,
    list: (serverId: string) => ['server-images', serverId] as const,
  },
  pools: {
    all: ['pools'] as const,
  },
  audit: {
    all: ['audit'] as const,
    list: (filter: Record<string, unknown>) => ['audit', 'list', filter] as const,
    verify: ['audit', 'verify'] as const,
  },
};
