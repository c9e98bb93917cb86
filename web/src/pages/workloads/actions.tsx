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

/** A notification that passes axe: a labelled close button, description at AA contrast. */
function notify(title: string, message: string, color?: string) {
  notifications.show({
    title,
    message,
    color,
    closeButtonProps: { 'aria-label': 'Dismiss' },
    styles: { description: { color: 'var(--mantine-color-text)' } },
  });
}

function failed(title: string, error: unknown) {
  const message = error instanceof ApiError ? error.detail || error.title : String(error);
  notify(title, message, 'red');
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
      // Red 9: white text on the theme's red 8 is just under 4.5:1.
      confirmProps: { color: 'red.9' },
      closeButtonProps: { 'aria-label': 'Close' },
      onConfirm: () =>
        stop.mutate(workload.id, {
          onSuccess: () => notify('Stopped', `${workload.name} was stopped.`),
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
      // Red 9: white text on the theme's red 8 is just under 4.5:1.
      confirmProps: { color: 'red.9' },
      closeButtonProps: { 'aria-label': 'Close' },
      onConfirm: () =>
        remove.mutate(workload.id, {
          onSuccess: () => {
            notify('Deleted', `${workload.name} was deleted.`);
            afterDelete?.();
          },
          onError: (error) => failed(`Could not delete ${workload.name}`, error),
        }),
    });

  return { confirmStop, confirmDelete, stopping: stop.isPending, deleting: remove.isPending };
}
