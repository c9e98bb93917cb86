/** Stop and delete, each behind a confirmation (confirmAction); outcomes as notifications. */
import { Text } from '@mantine/core';
import { useDeleteWorkload, useStopWorkload } from '../../api/queries/workloads';
import type { Workload } from '../../api/types';
import { confirmAction } from '../../components/confirm';
import { notifyError, notifySuccess } from '../../components/notify';

/** Statuses from which a workload never moves again (domain/workload_state.py TERMINAL). */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'stopped']);

export function isFinished(workload: Pick<Workload, 'status'>): boolean {
  return TERMINAL_STATUSES.has(workload.status);
}

export function useWorkloadActions() {
  const stop = useStopWorkload();
  const remove = useDeleteWorkload();

  const confirmStop = (workload: Workload) =>
    confirmAction({
      title: `Stop ${workload.name}?`,
      message: (
        <Text size="sm">
          It gives back what it holds{workload.server_name ? ` on ${workload.server_name}` : ''} and stays listed as
          stopped. A stopped workload cannot be started again.
        </Text>
      ),
      confirmLabel: 'Stop workload',
      onConfirm: () =>
        stop.mutate(workload.id, {
          onSuccess: () => notifySuccess(`${workload.name} was stopped.`, 'Stopped'),
          onError: (error) => notifyError(error, `Could not stop ${workload.name}`),
        }),
    });

  const confirmDelete = (workload: Workload, afterDelete?: () => void) =>
    confirmAction({
      title: `Delete ${workload.name}?`,
      message: `${isFinished(workload) ? '' : 'It is stopped first. '}The workload and its history are deleted; this cannot be undone.`,
      confirmLabel: 'Delete workload',
      onConfirm: () =>
        remove.mutate(workload.id, {
          onSuccess: () => {
            notifySuccess(`${workload.name} was deleted.`, 'Deleted');
            afterDelete?.();
          },
          onError: (error) => notifyError(error, `Could not delete ${workload.name}`),
        }),
    });

  return { confirmStop, confirmDelete, stopping: stop.isPending, deleting: remove.isPending };
}
