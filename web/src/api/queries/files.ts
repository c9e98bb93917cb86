/**
 * A workload's workspace files: list, upload (with progress), download, delete
 * (GET/PUT/DELETE /api/v1/workloads/{id}/files...).
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useRef, useState } from 'react';
import { ApiError, CSRF_COOKIE, CSRF_HEADER, api, readCookie, unwrap } from '../client';
import { queryKeys } from '../queryKeys';
import type { FileEntry } from '../types';

/** The API path of one workspace file: each segment encoded, the slashes kept. */
export function workspaceFilePath(workloadId: string, path: string): string {
  const segments = path.split('/').filter(Boolean).map(encodeURIComponent).join('/');
  return `/api/v1/workloads/${encodeURIComponent(workloadId)}/files/${segments}`;
}

/** `dir` joined with `name` the way the API names paths ("" is the workspace root). */
export function joinPath(dir: string, name: string): string {
  return dir ? `${dir.replace(/\/+$/, '')}/${name}` : name;
}

/** The parent of `path` ("" for a top-level entry). */
export function parentPath(path: string): string {
  const cut = path.replace(/\/+$/, '').lastIndexOf('/');
  return cut < 0 ? '' : path.slice(0, cut);
}

/** GET /api/v1/workloads/{id}/files?path=: one directory of the workspace. */
export function useWorkloadFiles(workloadId: string, path: string, options: { enabled?: boolean } = {}) {
  return useQuery({
    queryKey: queryKeys.workloadFiles.dir(workloadId, path),
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/workloads/{workload_id}/files', {
          params: { path: { workload_id: workloadId }, query: { path } },
        }),
      ),
    enabled: options.enabled ?? true,
  });
}

/** DELETE /api/v1/workloads/{id}/files/{path}. */
export function useDeleteWorkloadFile(workloadId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (path: string) => {
      // openapi-fetch would encode the slashes of a nested path; this keeps them.
      const response = await fetch(workspaceFilePath(workloadId, path), {
        method: 'DELETE',
        credentials: 'same-origin',
        headers: csrfHeaders(),
      });
      if (!response.ok) throw await problemOf(response);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.workloadFiles.all(workloadId) }),
  });
}

export interface UploadProgress {
  file: string;
  loaded: number;
  total: number;
}

/**
 * PUT /api/v1/workloads/{id}/files/{path} with the raw file as the body. XMLHttpRequest,
 * because fetch reports no upload progress.
 */
export function uploadWorkloadFile(
  workloadId: string,
  path: string,
  file: Blob,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<FileEntry> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', workspaceFilePath(workloadId, path));
    request.withCredentials = true;
    for (const [name, value] of Object.entries(csrfHeaders())) request.setRequestHeader(name, value);
    request.setRequestHeader('Content-Type', 'application/octet-stream');
    request.responseType = 'text';
    request.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    request.onload = () => {
      const body = parseJson(request.responseText);
      if (request.status >= 200 && request.status < 300) resolve(body as FileEntry);
      else reject(new ApiError(request.status, body));
    };
    request.onerror = () => reject(new Error('the upload failed: the connection was lost'));
    request.onabort = () => reject(new DOMException('the upload was cancelled', 'AbortError'));
    signal?.addEventListener('abort', () => request.abort(), { once: true });
    request.send(file);
  });
}

/**
 * Upload files into `dir` one after another; `progress` says how far the current one
 * is, `cancel()` stops it. The listing is refreshed after each file.
 */
export function useUploadWorkloadFiles(workloadId: string) {
  const queryClient = useQueryClient();
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const controller = useRef<AbortController | null>(null);
  const mutation = useMutation({
    mutationFn: async ({ dir, files }: { dir: string; files: File[] }) => {
      controller.current = new AbortController();
      const uploaded: FileEntry[] = [];
      try {
        for (const file of files) {
          setProgress({ file: file.name, loaded: 0, total: file.size });
          const entry = await uploadWorkloadFile(
            workloadId,
            joinPath(dir, file.name),
            file,
            (loaded, total) => setProgress({ file: file.name, loaded, total }),
            controller.current.signal,
          );
          uploaded.push(entry);
          await queryClient.invalidateQueries({ queryKey: queryKeys.workloadFiles.all(workloadId) });
        }
      } finally {
        setProgress(null);
        controller.current = null;
      }
      return uploaded;
    },
  });
  const cancel = useCallback(() => controller.current?.abort(), []);
  return { ...mutation, progress, cancel };
}

function csrfHeaders(): Record<string, string> {
  const csrf = readCookie(CSRF_COOKIE);
  return csrf ? { [CSRF_HEADER]: csrf } : {};
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

async function problemOf(response: Response): Promise<ApiError> {
  return new ApiError(response.status, parseJson(await response.text()));
}
