/** Server actions shared by the servers table and the server detail: status changes and delete. */
import { Button, Group, Text } from '@mantine/core';
import { modals } from '@mantine/modals';
import { notifications } from '@mantine/notifications';
import { useNavigate } from 'react-router-dom';
import { ApiError } from '../../api/client';
import { useDeleteServer, useSetServerStatus } from '../../api/queries/fleet';
import type { Server, ServerStatus } from '../../api/types';

function problemText(error: unknown): string {
  if (error instanceof ApiError) return error.detail || error.title;
  return error instanceof Error ? error.message : String(error);
}

const STATUS_ACTIONS: { status: ServerStatus; label: string; shownWhen: (s: string) => boolean }[] = [
  { status: 'draining', label: 'Drain', shownWhen: (s) => s === 'online' },
  { status: 'maintenance', label: 'Maintenance', shownWhen: (s) => s !== 'maintenance' },
  { status: 'online', label: 'Back online', shownWhen: (s) => s !== 'online' },
];

export function ServerActions({ server }: { server: Server }) {
  const setStatus = useSetServerStatus();
  const remove = useDeleteServer();
  const navigate = useNavigate();

  const change = (status: ServerStatus) =>
    setStatus.mutate(
      { id: server.id, status },
      {
        onSuccess: (updated) =>
          notifications.show({ color: 'green', message: `${updated.name} is now ${updated.status}.` }),
        onError: (error) =>
          notifications.show({ color: 'red', title: `Could not change ${server.name}`, message: problemText(error) }),
      },
    );

  const confirmDelete = () =>
    modals.openConfirmModal({
      title: `Delete server ${server.name}?`,
      children: (
        <Text size="sm">
          The server leaves the fleet; its record and history go. This cannot be undone.
        </Text>
      ),
      labels: { confirm: 'Delete server', cancel: 'Cancel' },
      confirmProps: { color: 'red' },
      onConfirm: () =>
        remove.mutate(server.id, {
          onSuccess: () => {
            notifications.show({ color: 'green', message: `${server.name} deleted.` });
            navigate('/servers');
          },
          onError: (error) =>
            notifications.show({ color: 'red', title: `Could not delete ${server.name}`, message: problemText(error) }),
        }),
    });

  return (
    <Group gap="xs">
      {STATUS_ACTIONS.filter((action) => action.shownWhen(server.status)).map((action) => (
        <Button
          key={action.status}
          variant="default"
          size="xs"
          loading={setStatus.isPending && setStatus.variables?.status === action.status}
          onClick={() => change(action.status)}
        >
          {action.label}
        </Button>
      ))}
      <Button color="red" variant="outline" size="xs" onClick={confirmDelete} loading={remove.isPending}>
        Delete
      </Button>
    </Group>
  );
}
