/**
 * The image catalog (everyone reads, operators and admins change it), the registries
 * (admins manage, operators read), and the images on each docker server: what is present,
 * and pull, build and push with their progress streamed (NDJSON).
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, api, unwrap } from '../client';
import { readNdjsonLines } from '../ndjson';
import { queryKeys } from '../queryKeys';
import type { CatalogImageCreate, CatalogImageUpdate, ImageProgress, RegistryCreate } from '../types';
import { fetchAllPages } from './paging';

/** GET /images, every page (by name). */
export function useCatalogImages() {
  return useQuery({
    queryKey: queryKeys.images.all,
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/images', { params: { query: { offset, limit } } })),
      ),
  });
}

export function useCreateCatalogImage() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: CatalogImageCreate) => unwrap(await api.POST('/api/v1/images', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.images.all }),
  });
}

export function useUpdateCatalogImage() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, body }: { id: string; body: CatalogImageUpdate }) =>
      unwrap(await api.PATCH('/api/v1/images/{image_id}', { params: { path: { image_id: id } }, body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.images.all }),
  });
}

export function useDeleteCatalogImage() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/images/{image_id}', { params: { path: { image_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.images.all }),
  });
}

/** GET /registries (admins and operators). */
export function useRegistries(options: { enabled?: boolean } = {}) {
  return useQuery({
    queryKey: queryKeys.registries.all,
    enabled: options.enabled ?? true,
    queryFn: async () =>
      fetchAllPages(async (offset, limit) =>
        unwrap(await api.GET('/api/v1/registries', { params: { query: { offset, limit } } })),
      ),
  });
}

export function useCreateRegistry() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: RegistryCreate) => unwrap(await api.POST('/api/v1/registries', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.registries.all }),
  });
}

export function useDeleteRegistry() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.DELETE('/api/v1/registries/{registry_id}', { params: { path: { registry_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.registries.all }),
  });
}

/** GET /servers/{id}/images: what a docker server has (a simulated one answers 409). */
export function useServerImages(serverId: string | null) {
  return useQuery({
    queryKey: queryKeys.serverImages.list(serverId ?? ''),
    enabled: serverId !== null,
    retry: false,
    queryFn: async () =>
      unwrap(await api.GET('/api/v1/servers/{server_id}/images', { params: { path: { server_id: serverId ?? '' } } })),
  });
}

/** DELETE /servers/{id}/images?reference=: untag it (the image goes with its last tag);
 * 409 while a container uses it. */
export function useRemoveServerImage() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ serverId, reference }: { serverId: string; reference: string }) =>
      unwrap(
        await api.DELETE('/api/v1/servers/{server_id}/images', {
          params: { path: { server_id: serverId }, query: { reference } },
        }),
      ),
    onSuccess: (_nothing, { serverId }) =>
      queryClient.invalidateQueries({ queryKey: queryKeys.serverImages.list(serverId) }),
  });
}

export type ImageOperation =
  | { kind: 'pull'; serverId: string; reference: string; registryId: string | null }
  | { kind: 'build'; serverId: string; tag: string; dockerfile: string; context: File }
  | { kind: 'push'; serverId: string; source: string; registryId: string; target: string | null };

/** A line as shown: a progress line of a layer replaces that layer's previous one. */
export interface ProgressLine {
  kind: ImageProgress['kind'];
  text: string;
}

export interface ImageOperationState {
  lines: ProgressLine[];
  running: boolean;
  /** The last line said done (true), error (false), or the stream has not ended (null). */
  succeeded: boolean | null;
  /** A refusal before the operation began (the response's status), or a broken stream. */
  error: unknown;
}

/** The most lines an operation keeps (older ones are dropped from the top). */
const MAX_LINES = 2000;
const SHOW_EVERY_MS = 50;

function lineText(line: ImageProgress): string {
  const parts = [line.layer ? `${line.layer}: ${line.message}` : line.message];
  if (line.total) parts.push(`${Math.round(((line.current ?? 0) / line.total) * 100)}%`);
  if (line.image) parts.push(line.image);
  return parts.join(' ');
}

function asProgress(line: unknown): ImageProgress {
  if (typeof line === 'object' && line !== null && 'kind' in line && 'message' in line) return line as ImageProgress;
  return { kind: 'log', message: String(line) };
}

function open(operation: ImageOperation, signal: AbortSignal) {
  const path = { server_id: operation.serverId };
  const options = { parseAs: 'stream' as const, signal };
  switch (operation.kind) {
    case 'pull':
      return api.POST('/api/v1/servers/{server_id}/images/pull', {
        ...options,
        params: { path },
        body: { reference: operation.reference, registry_id: operation.registryId },
      });
    case 'push':
      return api.POST('/api/v1/servers/{server_id}/images/push', {
        ...options,
        params: { path },
        body: { source: operation.source, registry_id: operation.registryId, target: operation.target },
      });
    case 'build':
      return api.POST('/api/v1/servers/{server_id}/images/build', {
        ...options,
        params: { path, query: { tag: operation.tag, dockerfile: operation.dockerfile } },
        // The raw body is the context's tar, sent as the file is.
        body: operation.context as unknown as string,
        bodySerializer: (body: unknown) => body as BodyInit,
        headers: { 'Content-Type': 'application/x-tar' },
      });
  }
}

/**
 * Run one pull, build or push at a time and keep its lines as they arrive. When it ends
 * the server's image list is read again. Leaving the page stops following the stream
 * (the operation itself carries on on the server).
 */
export function useImageOperation() {
  const queryClient = useQueryClient();
  const [state, setState] = useState<ImageOperationState>({ lines: [], running: false, succeeded: null, error: null });
  const controller = useRef<AbortController | null>(null);

  useEffect(() => () => controller.current?.abort(), []);

  const start = useCallback(
    async (operation: ImageOperation) => {
      controller.current?.abort();
      const current = new AbortController();
      controller.current = current;
      setState({ lines: [], running: true, succeeded: null, error: null });
      const lines: ProgressLine[] = [];
      const byLayer = new Map<string, number>();
      let succeeded: boolean | null = null;
      let showTimer: number | undefined;
      let error: unknown = null;
      try {
        const result = await open(operation, current.signal);
        if (!result.response.ok || !result.data) {
          const problem: unknown = await result.response.json().catch(() => undefined);
          throw new ApiError(result.response.status, problem);
        }
        await readNdjsonLines(result.data as ReadableStream<Uint8Array>, (raw) => {
          const line = asProgress(raw);
          if (line.kind === 'done') succeeded = true;
          if (line.kind === 'error') succeeded = false;
          const shown: ProgressLine = { kind: line.kind, text: lineText(line) };
          const layerKey = line.kind === 'status' && line.layer ? `${line.layer}` : null;
          const at = layerKey === null ? undefined : byLayer.get(layerKey);
          if (at !== undefined) {
            lines[at] = shown;
          } else {
            if (layerKey !== null) byLayer.set(layerKey, lines.length);
            lines.push(shown);
          }
          if (lines.length > 2 * MAX_LINES) {
            // Bounded memory on a long build log: drop the oldest, keep the layers' places.
            const drop = lines.length - MAX_LINES;
            lines.splice(0, drop);
            for (const [layer, index] of byLayer) {
              if (index < drop) byLayer.delete(layer);
              else byLayer.set(layer, index - drop);
            }
          }
          // One render per SHOW_EVERY_MS, not one per line (a build prints thousands).
          showTimer ??= window.setTimeout(() => {
            showTimer = undefined;
            const visible = lines.slice(-MAX_LINES);
            if (!current.signal.aborted) setState((previous) => ({ ...previous, lines: visible }));
          }, SHOW_EVERY_MS);
        });
      } catch (caught) {
        if (current.signal.aborted) return;
        error = caught;
      }
      window.clearTimeout(showTimer);
      setState({ lines: lines.slice(-MAX_LINES), running: false, succeeded, error });
      void queryClient.invalidateQueries({ queryKey: queryKeys.serverImages.list(operation.serverId) });
    },
    [queryClient],
  );

  return { ...state, start };
}
