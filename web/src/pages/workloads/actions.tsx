/** Stop and delete, each behind a confirmation (Mantine modals); failures as notifications. */
import { Text } from '@mantine/core';
import { modals } from '@mantine/modals';
import { notifications } from '@mantine/notifications';
import { ApiError } from '../../api/client';
import { useDeleteWorkload, useStopWorkload } from '../../api/queries/workloads';
import type { Workload } from '../../api/types';

/** Statuses from which a workload never moves again (domain/workload_state.py TERMINAL). */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'stopped']);

export function isFinished(workload: Pick<Workload, 'status'>): boolean {
  return TERMINAL_STATUSES.has(workload.status);
}

function failed(title: string, error: unknown) {
  const message = error instanceof ApiError ? error.detail || error.title : String(error);
  notifications.show({ color: 'red', title, message });
}

export function useWorkloadActions() {
  const stop = useStopWorkload();
  const remove = useDeleteWorkload();

  const confirmStop = (workload: Workload) =>
    modals.openConfirmModal({
      title: `Stop ${workload.name}?`,
      children: (
        <Text size="sm">
          It gives back what it holds{workload.server_name ? ` on ${workload.server_name}` : ''} and stays listed as
          stopped. A stopped workload cannot be started again.
        </Text>
      ),
      labels: { confirm: 'Stop workload', cancel: 'Cancel' },
      confirmProps: { color: 'red' },
      onConfirm: () =>
        stop.mutate(workload.id, {
          onSuccess: () => notifications.show({ title: 'Stopped', message: `${workload.name} was stopped.` }),
          onError: (error) => failed(`Could not stop ${workload.name}`, error),
        }),
    });

  const confirmDelete = (workload: Workload, afterDelete?: () => void) =>
    modals.openConfirmModal({
      title: `Delete ${workload.name}?`,
      children: (
        <Text size="sm">
          {isFinished(workload) ? '' : 'It is stopped first. '}The workload and its history are deleted; this
          cannot be undone.
        </Text>
      ),
      labels: { confirm: 'Delete workload', cancel: 'Cancel' },
      confirmProps: { color: 'red' },
      onConfirm: () =>
        remove.mutate(workload.id, {
          onSuccess: () => {
            notifications.show({ title: 'Deleted', message: `${workload.name} was deleted.` });
            afterDelete?.();
          },
          onError: (error) => failed(`Could not delete ${workload.name}`, error),
        }),
    });

  return { confirmStop, confirmDelete, stopping: stop.isPending, deleting: remove.isPending };
}
