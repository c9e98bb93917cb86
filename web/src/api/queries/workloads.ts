/** Workload queries and mutations. */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { ApiError, api, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { paths } from '../schema';
import type { Workload, WorkloadCreate, WorkloadList, WorkloadUpdate } from '../types';

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

/** GET /api/v1/workloads/{id}; live updates keep it current (api/live.ts). */
export function useWorkload(workloadId: string) {
  return useQuery({
    queryKey: queryKeys.workloads.detail(workloadId),
    queryFn: async () =>
      unwrap(await api.GET('/api/v1/workloads/{workload_id}', { params: { path: { workload_id: workloadId } } })),
  });
}

/** The most events a timeline shows (the API's largest page). */
export const MAX_TIMELINE_EVENTS = 1000;

/** GET /api/v1/workloads/{id}/events: the status history, oldest first. */
export function useWorkloadEvents(workloadId: string) {
  return useQuery({
    queryKey: queryKeys.workloads.events(workloadId),
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/workloads/{workload_id}/events', {
          params: { path: { workload_id: workloadId }, query: { limit: MAX_TIMELINE_EVENTS } },
        }),
      ),
  });
}

/** Put a workload the API just answered into the caches that show it. */
function remember(queryClient: ReturnType<typeof useQueryClient>, workload: Workload) {
  queryClient.setQueryData(queryKeys.workloads.detail(workload.id), workload);
  queryClient.setQueriesData<WorkloadList>({ queryKey: ['workloads', 'list'] }, (list) =>
    list && list.data.some((w) => w.id === workload.id)
      ? { ...list, data: list.data.map((w) => (w.id === workload.id ? workload : w)) }
      : list,
  );
}

/** POST /api/v1/workloads. */
export function useCreateWorkload() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: WorkloadCreate) => unwrap(await api.POST('/api/v1/workloads', { body })),
    onSuccess: async (workload) => {
      queryClient.setQueryData(queryKeys.workloads.detail(workload.id), workload);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: ['workloads', 'list'] }),
        queryClient.invalidateQueries({ queryKey: queryKeys.fleet.all }),
      ]);
    },
  });
}

/** PATCH /api/v1/workloads/{id}: resources, priority, preemptible. */
export function useUpdateWorkload(workloadId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: WorkloadUpdate) =>
      unwrap(
        await api.PATCH('/api/v1/workloads/{workload_id}', {
          params: { path: { workload_id: workloadId } },
          body,
        }),
      ),
    onSuccess: async (workload) => {
      remember(queryClient, workload);
      await queryClient.invalidateQueries({ queryKey: queryKeys.workloads.events(workloadId) });
    },
  });
}

/** POST /api/v1/workloads/{id}/stop. */
export function useStopWorkload() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (workloadId: string) =>
      unwrap(
        await api.POST('/api/v1/workloads/{workload_id}/stop', { params: { path: { workload_id: workloadId } } }),
      ),
    onSuccess: async (workload) => {
      remember(queryClient, workload);
      await queryClient.invalidateQueries({ queryKey: queryKeys.workloads.events(workload.id) });
    },
  });
}

/** DELETE /api/v1/workloads/{id}: stops it first when it is still active. */
export function useDeleteWorkload() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (workloadId: string) => {
      unwrap(
        await api.DELETE('/api/v1/workloads/{workload_id}', { params: { path: { workload_id: workloadId } } }),
      );
      return workloadId;
    },
    onSuccess: async (workloadId) => {
      // No live event says a row is gone: drop it from every list now.
      queryClient.setQueriesData<WorkloadList>({ queryKey: ['workloads', 'list'] }, (list) =>
        list && list.data.some((w) => w.id === workloadId)
          ? { data: list.data.filter((w) => w.id !== workloadId), count: Math.max(0, list.count - 1) }
          : list,
      );
      // Stale, not removed: a page still showing it would fetch it again at once (a 404)
      // before it moves away; opened again later, it is read again and found gone.
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: queryKeys.workloads.detail(workloadId), refetchType: 'none' }),
        queryClient.invalidateQueries({ queryKey: queryKeys.workloads.events(workloadId), refetchType: 'none' }),
      ]);
      await queryClient.invalidateQueries({ queryKey: ['workloads', 'list'] });
    },
  });
}

/** The most log text a page keeps (older text is dropped from the top). */
const MAX_LOG_CHARS = 512 * 1024;
export const LOG_TAIL_LINES = 1000;

export interface WorkloadLogs {
  text: string;
  /** True while a followed stream is open (a docker container's output). */
  following: boolean;
  error: unknown;
}

/**
 * GET /api/v1/workloads/{id}/logs?follow=true, read as it arrives. A docker workload's
 * output streams while its container runs; a simulated one (and a finished container)
 * answers at once and the response ends. Then the logs are read again whenever
 * `changeMark` moves (the workload's `updated_at`, which live events keep current): no
 * timer.
 */
export function useWorkloadLogs(workloadId: string, changeMark: string | undefined): WorkloadLogs {
  const [logs, setLogs] = useState<WorkloadLogs>({ text: '', following: false, error: null });
  const [reading, setReading] = useState(0);
  const following = useRef(false);
  const mark = useRef(changeMark);

  // A change while no stream is open: read again.
  useEffect(() => {
    const previous = mark.current;
    mark.current = changeMark;
    if (previous !== undefined && previous !== changeMark && !following.current) setReading((n) => n + 1);
  }, [changeMark]);

  useEffect(() => {
    const controller = new AbortController();
    const markAtStart = mark.current;
    following.current = true;
    setLogs((current) => ({ ...current, following: true, error: null }));
    (async () => {
      let text = '';
      try {
        const result = await api.GET('/api/v1/workloads/{workload_id}/logs', {
          params: { path: { workload_id: workloadId }, query: { tail: LOG_TAIL_LINES, follow: true } },
          parseAs: 'stream',
          signal: controller.signal,
        });
        if (!result.response.ok || !result.data) {
          const problem: unknown = await result.response.json().catch(() => undefined);
          throw new ApiError(result.response.status, problem);
        }
        const reader = (result.data as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text = (text + decoder.decode(value, { stream: true })).slice(-MAX_LOG_CHARS);
          const shown = text;
          setLogs((current) => ({ ...current, text: shown }));
        }
        setLogs((current) => ({ ...current, text }));
      } catch (error) {
        if (!controller.signal.aborted) setLogs((current) => ({ ...current, error }));
      } finally {
        if (!controller.signal.aborted) {
          following.current = false;
          setLogs((current) => ({ ...current, following: false }));
          // It changed while this read was under way: what was read may be behind.
          if (mark.current !== markAtStart) setReading((n) => n + 1);
        }
      }
    })();
    return () => {
      controller.abort();
      following.current = false;
    };
  }, [workloadId, reading]);

  return logs;
}
