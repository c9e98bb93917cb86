/** Server actions shared by the servers table and the server detail: status changes, a host terminal, cleanup and delete. */
import { Button, Group } from '@mantine/core';
import { useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { useDeleteServer, useSetServerStatus } from '../../api/queries/fleet';
import type { Server, ServerStatus } from '../../api/types';
import { confirmAction } from '../../components/confirm';
import { notifySuccess, notifyError } from '../../components/notify';
import { CleanupModal } from './CleanupModal';
import { HostTerminalModal } from './HostTerminalModal';

const STATUS_ACTIONS: { status: ServerStatus; label: string; shownWhen: (s: string) => boolean }[] = [
  { status: 'draining', label: 'Drain', shownWhen: (s) => s === 'online' },
  { status: 'maintenance', label: 'Maintenance', shownWhen: (s) => s !== 'maintenance' },
  { status: 'online', label: 'Back online', shownWhen: (s) => s !== 'online' },
];

export function ServerActions({ server }: { server: Server }) {
  const setStatus = useSetServerStatus();
  const remove = useDeleteServer();
  const navigate = useNavigate();
  const [cleaning, setCleaning] = useState(false);
  const [terminal, setTerminal] = useState(false);

  const change = (status: ServerStatus) =>
    setStatus.mutate(
      { id: server.id, status },
      {
        onSuccess: (updated) => notifySuccess(`${updated.name} is now ${updated.status}.`),
        onError: (error) => notifyError(error, `Could not change ${server.name}`),
      },
    );

  const confirmDelete = () =>
    confirmAction({
      title: `Delete server ${server.name}?`,
      message: 'The server leaves the fleet; its record and history go. This cannot be undone.',
      confirmLabel: 'Delete server',
      onConfirm: () =>
        remove.mutate(server.id, {
          onSuccess: () => {
            notifySuccess(`${server.name} deleted.`);
            navigate('/servers');
          },
          onError: (error) => notifyError(error, `Could not delete ${server.name}`),
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
      <Button variant="default" size="xs" onClick={() => setTerminal(true)}>
        Terminal
      </Button>
      <Button variant="default" size="xs" onClick={() => setCleaning(true)}>
        Clean up
      </Button>
      <Button color="red" variant="outline" size="xs" onClick={confirmDelete} loading={remove.isPending}>
        Delete
      </Button>
      <CleanupModal server={server} opened={cleaning} onClose={() => setCleaning(false)} />
      <HostTerminalModal server={server} opened={terminal} onClose={() => setTerminal(false)} />
    </Group>
  );
}
