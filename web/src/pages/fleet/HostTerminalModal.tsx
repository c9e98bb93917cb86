/**
 * A terminal on a server's own host (issue 19): a login shell over SSH through the control
 * plane, which holds the key and checks the host key it pinned at first use. The panel is
 * the workloads' xterm.js terminal (its own lazily loaded chunk), pointed at
 * /api/v1/servers/{id}/terminal; a refusal (no SSH settings, a changed host key, a login
 * the host refused) is shown as the server's own reason.
 */
import { Modal, Text } from '@mantine/core';
import type { Server } from '../../api/types';
import { TerminalPanel } from '../workloads/console';

export function HostTerminalModal({ server, opened, onClose }: { server: Server; opened: boolean; onClose: () => void }) {
  return (
    <Modal opened={opened} onClose={onClose} title={`Terminal on ${server.name}`} size="xl">
      <Text size="xs" c="dimmed" mb="xs">
        A shell on the host itself over SSH, as the user of its SSH settings (set with `gpuyard server ssh-set`). Every
        session is audited.
      </Text>
      {opened && <TerminalPanel serverId={server.id} />}
    </Modal>
  );
}
